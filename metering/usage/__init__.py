"""Usage events: inputs (fields, validation, request hash), pricing (prices and costs, before
any lock) and record (the debit and the row, one event or a batch). metering.services
re-exports the public names."""
