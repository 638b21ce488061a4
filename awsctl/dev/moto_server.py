"""`python -m awsctl.dev.moto_server [moto server args]`: moto's server behind the ELBv2 realism layer,
and, under `awsctl dev`, the local ALB data plane with the pods that answer. It composes the two, so
neither module imports the other's way round (the data plane reads the realism layer's state; the
realism layer knows nothing of the data plane)."""

from __future__ import annotations

import os

from awsctl.dev.realism import install_once


def main(argv: list[str] | None = None) -> None:
    from moto import server

    layer = install_once()
    pods_url, admin_port = os.environ.get("AWSCTL_DEV_PODS_URL"), os.environ.get("AWSCTL_DATAPLANE_PORT")
    if layer is not None and pods_url and admin_port:  # `awsctl dev`: real traffic, real health checks
        from awsctl.dev.dataplane import DataPlane
        from awsctl.dev.pods import TableClient

        DataPlane(layer, TableClient(pods_url).resolve, admin_port=int(admin_port)).start()
    server.main(argv)


if __name__ == "__main__":
    main()
