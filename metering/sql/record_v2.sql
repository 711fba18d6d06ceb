-- Version 2 (metering/migrations/0012): record_v1.sql's function, for the same parameters
-- and with the same results, as one statement planned once per connection (generic plans:
-- see ledger/sql/debit_v4.sql; v1 was four statements, the first of them sorting the ledger's
-- rows thirteen times), and metering_usage_prior, the read of the events already recorded
-- with a request's keys, which the API runs with the config stamp before pricing: planned on
-- every request as a query of its own, it cost more than the read.
--
-- metering_usage_record writes a batch of one tenant's usage events (a single event is a batch
-- of one) and pays for them in the same statement: it calls the ledger's ledger_debit_batch
-- (ledger/sql/debit_v4.sql, the one implementation of the consumption order; its parameters
-- come as ledger.services built them, unchanged) for the charged events, then inserts the
-- events that were paid (or replayed by the ledger) and the free ones. Metering writes only
-- its own table; the ledger's rows are the ledger function's. Run alone it is one statement,
-- so one transaction: the debit and its events commit together, and an error (a key taken by
-- a concurrent request: the unique constraint) leaves neither.
--
-- p_events: a JSON array of the events in order, each with its columns (metering/usage/
-- write.py `_events_json`), `debit`, the event's slot in the ledger's arrays (NULL for a free
-- event), and `prior`, for a free event the slot of the last charge before it in the batch.
-- What the debit decides is filled in here: the ledger transaction, the buckets drawn
-- ([{bucket_id, credits, policy}]), the revenue (the paid parts' credits x cost basis, in the
-- currency of the first paid part drawn, to 8 places), and the balance after (for a free
-- event: after the last charge paid before it, else the balance before the batch, or
-- p_available when nothing is charged: then the ledger is not called at all).
--
-- p_currency: the currency of an event that earned nothing (free credits, a free action); when
-- NULL and one did, the function raises SQLSTATE CL001 and nothing is written: the caller asks
-- for the tenant's currency and calls again.
--
-- Results: first the ledger's rows as ledger_debit_batch returned them, in its order (its 13
-- columns; an idempotency conflict or a hold not open ends the call there, with nothing
-- written), then one row per event inserted (the ledger's columns NULL): its key, id and the
-- columns filled here.
CREATE OR REPLACE FUNCTION metering_usage_record(
    p_tenant bigint,
    p_now timestamptz,
    p_spend_at timestamptz,
    p_kind text,
    p_allow_overdraft boolean,
    p_actor integer,
    p_keys text[],
    p_amounts numeric[],
    p_holds bigint[],
    p_source_types text[],
    p_source_ids text[],
    p_memos text[],
    p_events json,
    p_currency text,
    p_available numeric
) RETURNS TABLE (
    slot integer,
    status text,
    transaction_id bigint,
    available_before numeric,
    available_after numeric,
    from_hold numeric,
    bucket_id bigint,
    part numeric,
    cost_basis_minor numeric,
    currency text,
    policy text,
    watch_level numeric,
    outbox_message_id bigint,
    event_key text,
    event_id bigint,
    event_transaction_id bigint,
    event_buckets jsonb,
    event_revenue_minor numeric,
    event_revenue_currency text,
    event_available_after numeric
) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH debit AS MATERIALIZED (
        -- The ledger's rows; a batch that charges nothing does not call it (a one-time filter).
        SELECT l.*
          FROM ledger_debit_batch(
                p_tenant, p_now, p_spend_at, p_kind, p_allow_overdraft, p_actor, p_keys,
                p_amounts, p_holds, p_source_types, p_source_ids, p_memos
               ) WITH ORDINALITY AS l(
                slot, status, transaction_id, available_before, available_after, from_hold,
                bucket_id, part, cost_basis_minor, currency, policy, watch_level,
                outbox_message_id, ord
               )
         WHERE cardinality(p_keys) > 0
    ),
    -- Per charge: its status, transaction, balance after (a refused one's is the balance it
    -- was refused at: the running balance there), the buckets drawn, and the revenue in the
    -- currency of the first paid part (money invariant 8: currencies never added).
    charge AS (
        SELECT p.slot, min(p.status) AS status, min(p.transaction_id) AS tx,
               min(p.available_after) AS after,
               coalesce(jsonb_agg(jsonb_build_object(
                   'bucket_id', p.bucket_id, 'credits', p.part::text, 'policy', p.policy
               ) ORDER BY p.ord) FILTER (WHERE p.bucket_id IS NOT NULL), '[]') AS buckets,
               min(p.first_paid) AS currency,
               round(sum(p.part * p.cost_basis_minor) FILTER (WHERE p.currency = p.first_paid),
                     8) AS revenue
          FROM (
            SELECT d.*, (array_agg(d.currency) FILTER (WHERE d.cost_basis_minor <> 0)
                             OVER (PARTITION BY d.slot ORDER BY d.ord
                                   ROWS BETWEEN UNBOUNDED PRECEDING
                                   AND UNBOUNDED FOLLOWING))[1] AS first_paid
              FROM debit d
          ) p
         GROUP BY p.slot
    ),
    inserted AS (
        INSERT INTO metering_usageevent (
            tenant_id, rate_card_version_id, idempotency_key, request_hash, action,
            model_class, quantity, occurred_at, workflow_run_id, step_index, labels, outcome,
            credits, ledger_transaction_id, buckets, input_tokens, output_tokens, tool_calls,
            vector_reads, orchestration_runs, gpu_seconds, cogs_minor, cogs_currency,
            revenue_minor, revenue_currency, available_after, created_at
        )
        SELECT p_tenant, e.rate_card_version_id, e.idempotency_key, e.request_hash, e.action,
               e.model_class, e.quantity, e.occurred_at, e.workflow_run_id, e.step_index,
               e.labels, e.outcome, e.credits, c.tx, coalesce(c.buckets, '[]'::jsonb),
               e.input_tokens, e.output_tokens, e.tool_calls, e.vector_reads,
               e.orchestration_runs, e.gpu_seconds, e.cogs_minor, e.cogs_currency,
               coalesce(c.revenue, 0),
               coalesce(c.currency, p_currency, metering_currency_needed()),
               round(coalesce(c.after, cp.after,
                              (SELECT d.available_before FROM debit d LIMIT 1), p_available),
                     4),
               p_now
          FROM json_to_recordset(p_events) AS e(
                rate_card_version_id bigint, idempotency_key text, request_hash text,
                action text, model_class text, quantity numeric, occurred_at timestamptz,
                workflow_run_id bigint, step_index integer, labels jsonb, outcome text,
                credits numeric, input_tokens bigint, output_tokens bigint,
                tool_calls integer, vector_reads bigint, orchestration_runs integer,
                gpu_seconds numeric, cogs_minor numeric, cogs_currency text, debit integer,
                prior integer
          )
          LEFT JOIN charge c ON c.slot = e.debit
          LEFT JOIN charge cp ON cp.slot = e.prior
         -- The ledger refused the whole batch (a conflict, a hold not open): nothing.
         WHERE NOT EXISTS (
                SELECT 1 FROM debit d WHERE d.status IN ('conflict', 'hold_not_open')
               )
           AND (e.debit IS NULL OR c.status IN ('paid', 'replayed'))
        RETURNING metering_usageevent.idempotency_key, metering_usageevent.id,
                  metering_usageevent.ledger_transaction_id, metering_usageevent.buckets,
                  metering_usageevent.revenue_minor, metering_usageevent.revenue_currency,
                  metering_usageevent.available_after
    )
    (SELECT d.slot, d.status, d.transaction_id, d.available_before, d.available_after,
            d.from_hold, d.bucket_id, d.part, d.cost_basis_minor, d.currency, d.policy,
            d.watch_level, d.outbox_message_id, NULL::text, NULL::bigint, NULL::bigint,
            NULL::jsonb, NULL::numeric, NULL::text, NULL::numeric
       FROM debit d ORDER BY d.ord)
    UNION ALL
    (SELECT NULL::integer, NULL::text, NULL::bigint, NULL::numeric, NULL::numeric,
            NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric, NULL::text, NULL::text,
            NULL::numeric, NULL::bigint, i.idempotency_key::text, i.id,
            i.ledger_transaction_id, i.buckets, i.revenue_minor, i.revenue_currency::text,
            i.available_after
       FROM inserted i);
END;
$fn$;

-- Raised from the insert's COALESCE, so only when an event earned nothing and the caller did
-- not say in which currency (see above).
CREATE OR REPLACE FUNCTION metering_currency_needed() RETURNS text LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'metering_usage_record: the tenant''s currency is needed'
        USING ERRCODE = 'CL001';
END;
$fn$;

-- The events of a tenant recorded with the given keys, with their rate card version's number
-- (metering/usage/recorded.py reads the columns in this order): one probe of the unique
-- (tenant, key) index per key.
CREATE OR REPLACE FUNCTION metering_usage_prior(p_tenant bigint, p_keys varchar[])
RETURNS TABLE (
    id bigint,
    idempotency_key varchar,
    request_hash varchar,
    action varchar,
    model_class varchar,
    quantity numeric,
    occurred_at timestamptz,
    outcome varchar,
    labels jsonb,
    workflow_run_id bigint,
    step_index integer,
    credits numeric,
    rate_card_version_id bigint,
    version_number integer,
    ledger_transaction_id bigint,
    buckets jsonb,
    input_tokens bigint,
    output_tokens bigint,
    tool_calls integer,
    vector_reads bigint,
    orchestration_runs integer,
    gpu_seconds numeric,
    cogs_minor numeric,
    cogs_currency varchar,
    revenue_minor numeric,
    revenue_currency varchar,
    available_after numeric,
    created_at timestamptz
) LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT e.id, e.idempotency_key, e.request_hash, e.action, e.model_class, e.quantity,
           e.occurred_at, e.outcome, e.labels, e.workflow_run_id, e.step_index, e.credits,
           e.rate_card_version_id, v.number, e.ledger_transaction_id, e.buckets,
           e.input_tokens, e.output_tokens, e.tool_calls, e.vector_reads,
           e.orchestration_runs, e.gpu_seconds, e.cogs_minor, e.cogs_currency,
           e.revenue_minor, e.revenue_currency, e.available_after, e.created_at
      FROM metering_usageevent e
      JOIN ratecards_ratecardversion v ON v.id = e.rate_card_version_id
     WHERE e.tenant_id = p_tenant AND e.idempotency_key = ANY(p_keys);
END;
$fn$;
