"""Pure decisions: no I/O, no clocks, no clients. Everything here is unit-tested without mocks."""
