from awsctl.cli import main

raise SystemExit(main())
