-- Version 2 (ledger/migrations/0012): expire_v1.sql with the due buckets found by `unspent`,
-- the condition of the partial indexes since that migration (ledger/models.py).
--
-- The expiry sweep's set-based step (docs/architecture.md, "The sweep").
--
-- ledger_expire_tenants writes down, for the given tenants, every bucket past its expiry that
-- still holds credits: one `expiry` transaction and entry per bucket, the bucket emptied, the
-- account's per-policy totals lowered; a handful of statements whatever the number of buckets.
-- It locks the tenants' accounts in tenant order, skipping any another transaction holds
-- (a debit, or a second sweep: that one expires them), and re-reads the due buckets under
-- those locks, so a bucket is expired once however many sweeps run; the unique index on
-- expiry entries backs this up. The clock comes from the caller (p_now). Returns, per tenant
-- it expired something for, how many buckets and the available balance after.
CREATE OR REPLACE FUNCTION ledger_expire_tenants(p_tenants bigint[], p_now timestamptz)
RETURNS TABLE (tenant_id bigint, buckets integer, available numeric)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    v_locked bigint[];
BEGIN
    SELECT array_agg(a.tenant_id ORDER BY a.tenant_id) INTO v_locked
      FROM (SELECT a.tenant_id FROM ledger_creditaccount a
             WHERE a.tenant_id = ANY(p_tenants)
             ORDER BY a.tenant_id
             FOR UPDATE SKIP LOCKED) a;
    IF v_locked IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH due AS MATERIALIZED (
        SELECT b.id, b.tenant_id, b.remaining, b.policy, b.expires_at,
               nextval(pg_get_serial_sequence('ledger_ledgertransaction', 'id')) AS tx_id
          FROM ledger_creditbucket b
         WHERE b.tenant_id = ANY(v_locked) AND b.unspent AND b.expires_at <= p_now
    ),
    per_tenant AS (
        SELECT d.tenant_id,
               coalesce(sum(d.remaining) FILTER (WHERE d.policy = 'monthly_reset'), 0) AS monthly,
               coalesce(sum(d.remaining) FILTER (WHERE d.policy = 'permanent'), 0) AS permanent,
               coalesce(sum(d.remaining) FILTER (WHERE d.policy = 'rolling_12m'), 0) AS rolling,
               count(*)::integer AS n
          FROM due d GROUP BY d.tenant_id
    ),
    accounts AS (
        UPDATE ledger_creditaccount a
           SET monthly_reset_total = a.monthly_reset_total - t.monthly,
               permanent_total = a.permanent_total - t.permanent,
               rolling_12m_total = a.rolling_12m_total - t.rolling
          FROM per_tenant t
         WHERE a.tenant_id = t.tenant_id
        RETURNING a.tenant_id, t.n,
                  a.monthly_reset_total + a.permanent_total + a.rolling_12m_total
                  - a.overdraft_used - a.reserved AS available
    ),
    transactions AS (
        INSERT INTO ledger_ledgertransaction (
            id, tenant_id, kind, amount, from_hold, idempotency_key, source_type, source_id,
            hold_id, reverses_id, actor_id, memo, created_at
        )
        SELECT d.tx_id, d.tenant_id, 'expiry', -d.remaining, 0, 'expiry:' || d.id, '', '',
               NULL, NULL, NULL,
               CASE d.policy WHEN 'monthly_reset' THEN 'Monthly reset'
                             WHEN 'rolling_12m' THEN 'Rolling 12 months'
                             ELSE 'Permanent' END
               || ' credits expired at '
               || to_char(d.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00:00.',
               p_now
          FROM due d
    ),
    entries AS (
        INSERT INTO ledger_ledgerentry (
            tenant_id, transaction_id, kind, amount, bucket_id, hold_id, balance_after,
            created_at
        )
        SELECT d.tenant_id, d.tx_id, 'expiry', -d.remaining, d.id, NULL, a.available, p_now
          FROM due d JOIN accounts a ON a.tenant_id = d.tenant_id
    ),
    emptied AS (
        UPDATE ledger_creditbucket b SET remaining = 0
          FROM due d
         WHERE b.tenant_id = d.tenant_id AND b.id = d.id
    )
    SELECT a.tenant_id, a.n, a.available FROM accounts a ORDER BY a.tenant_id;
END;
$fn$;
