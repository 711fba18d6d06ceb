"""The ranges of PostgreSQL's integer columns, for the `max_value` (and `min_value`) of API
serializer fields: a value its column cannot hold is a 422 naming the field, not a database
error. Narrower bounds where the meaning is narrower (a percentage: 1 to 99)."""

SMALLINT_MAX = 2**15 - 1  # smallint: PositiveSmallIntegerField, SmallIntegerField
INTEGER_MAX = 2**31 - 1  # integer: IntegerField, PositiveIntegerField
BIGINT_MAX = 2**63 - 1  # bigint: BigIntegerField, PositiveBigIntegerField, the ids
