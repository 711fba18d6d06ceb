-- Version 1 (metering/migrations/0011): usage events recorded in one statement.
--
-- metering_usage_record writes a batch of one tenant's usage events (a single event is a batch
-- of one) and pays for them in the same statement: it calls the ledger's ledger_debit_batch
-- (ledger/sql/debit_v3.sql, the one implementation of the consumption order; its parameters
-- come as ledger.services built them, unchanged) for the charged events, then inserts the
-- events that were paid (or replayed by the ledger) and the free ones. Metering writes only
-- its own table; the ledger's rows are the ledger function's. Run alone it is one statement,
-- so one transaction: the debit and its events commit together, and an error (a key taken by
-- a concurrent request: the unique constraint) leaves neither.
--
-- p_events: a JSON array of the events in order, each with its columns (metering/usage/
-- record.py `_event_json`), `debit`, the event's slot in the ledger's arrays (NULL for a free
-- event), and `prior`, for a free event the slot of the last charge before it in the batch.
-- What the debit decides is filled in here: the ledger transaction, the buckets drawn
-- ([{bucket_id, credits, policy}]), the revenue (the paid parts' credits x cost basis, in the
-- currency of the first paid part drawn, to 8 places; metering/usage/record.py `_revenue`),
-- and the balance after (for a free event: after the last charge paid before it, else the
-- balance before the batch, or p_available when nothing is charged).
--
-- p_currency: the currency of an event that earned nothing (free credits, a free action); when
-- NULL and one did, the function raises SQLSTATE CL001 and nothing is written: the caller asks
-- for the tenant's currency and calls again.
--
-- Results: first the ledger's rows as ledger_debit_batch returned them (its 13 columns; an
-- idempotency conflict or a hold not open ends the call there, with nothing written), then one
-- row per event inserted (the ledger's columns NULL): its key, id and the columns filled here.
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
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    -- the ledger's rows, in its order
    d_slot integer[];
    d_status text[];
    d_tx bigint[];
    d_before numeric[];
    d_after numeric[];
    d_from_hold numeric[];
    d_bucket bigint[];
    d_part numeric[];
    d_cost numeric[];
    d_currency text[];
    d_policy text[];
    d_watch numeric[];
    d_message bigint[];
    -- per charge (index = slot, the ledger's slots being 1 .. n)
    s_status text[];
    s_tx bigint[];
    s_after numeric[];
    s_buckets jsonb[];
    s_currency text[];
    s_revenue numeric[];
    v_before numeric := p_available;
BEGIN
    IF cardinality(p_keys) > 0 THEN
        SELECT array_agg(l.slot ORDER BY l.ord), array_agg(l.status ORDER BY l.ord),
               array_agg(l.transaction_id ORDER BY l.ord),
               array_agg(l.available_before ORDER BY l.ord),
               array_agg(l.available_after ORDER BY l.ord),
               array_agg(l.from_hold ORDER BY l.ord), array_agg(l.bucket_id ORDER BY l.ord),
               array_agg(l.part ORDER BY l.ord), array_agg(l.cost_basis_minor ORDER BY l.ord),
               array_agg(l.currency ORDER BY l.ord), array_agg(l.policy ORDER BY l.ord),
               array_agg(l.watch_level ORDER BY l.ord),
               array_agg(l.outbox_message_id ORDER BY l.ord)
          INTO d_slot, d_status, d_tx, d_before, d_after, d_from_hold, d_bucket, d_part,
               d_cost, d_currency, d_policy, d_watch, d_message
          FROM ledger_debit_batch(
                p_tenant, p_now, p_spend_at, p_kind, p_allow_overdraft, p_actor, p_keys,
                p_amounts, p_holds, p_source_types, p_source_ids, p_memos
               ) WITH ORDINALITY AS l(
                slot, status, transaction_id, available_before, available_after, from_hold,
                bucket_id, part, cost_basis_minor, currency, policy, watch_level,
                outbox_message_id, ord
               );
        RETURN QUERY
        SELECT u.*, NULL::text, NULL::bigint, NULL::bigint, NULL::jsonb, NULL::numeric,
               NULL::text, NULL::numeric
          FROM unnest(d_slot, d_status, d_tx, d_before, d_after, d_from_hold, d_bucket,
                      d_part, d_cost, d_currency, d_policy, d_watch, d_message) AS u;
        IF d_status[1] IN ('conflict', 'hold_not_open') THEN
            RETURN;  -- the ledger wrote nothing; neither does metering
        END IF;
        v_before := d_before[1];
        -- Per charge: its status, transaction, balance after (a refused one's is the balance
        -- it was refused at: the running balance there), the buckets drawn, and the revenue in
        -- the currency of the first paid part (money invariant 8: currencies never added).
        SELECT array_agg(c.status ORDER BY c.slot), array_agg(c.tx ORDER BY c.slot),
               array_agg(c.after ORDER BY c.slot), array_agg(c.buckets ORDER BY c.slot),
               array_agg(c.currency ORDER BY c.slot), array_agg(c.revenue ORDER BY c.slot)
          INTO s_status, s_tx, s_after, s_buckets, s_currency, s_revenue
          FROM (
            SELECT p.slot, min(p.status) AS status, min(p.tx) AS tx, min(p.after) AS after,
                   coalesce(jsonb_agg(jsonb_build_object(
                       'bucket_id', p.bucket, 'credits', p.part::text, 'policy', p.policy
                   ) ORDER BY p.ord) FILTER (WHERE p.bucket IS NOT NULL), '[]') AS buckets,
                   min(p.first_paid) AS currency,
                   round(sum(p.part * p.cost) FILTER (WHERE p.currency = p.first_paid), 8)
                       AS revenue
              FROM (
                SELECT u.*, (array_agg(u.currency) FILTER (WHERE u.cost <> 0)
                                 OVER (PARTITION BY u.slot ORDER BY u.ord
                                       ROWS BETWEEN UNBOUNDED PRECEDING
                                       AND UNBOUNDED FOLLOWING))[1] AS first_paid
                  FROM unnest(d_slot, d_status, d_tx, d_after, d_bucket, d_part, d_cost,
                              d_currency, d_policy)
                       WITH ORDINALITY AS u(slot, status, tx, after, bucket, part, cost,
                                            currency, policy, ord)
              ) p
             GROUP BY p.slot
          ) c;
    END IF;
    RETURN QUERY
    WITH inserted AS (
        INSERT INTO metering_usageevent (
            tenant_id, rate_card_version_id, idempotency_key, request_hash, action,
            model_class, quantity, occurred_at, workflow_run_id, step_index, labels, outcome,
            credits, ledger_transaction_id, buckets, input_tokens, output_tokens, tool_calls,
            vector_reads, orchestration_runs, gpu_seconds, cogs_minor, cogs_currency,
            revenue_minor, revenue_currency, available_after, created_at
        )
        SELECT p_tenant, e.rate_card_version_id, e.idempotency_key, e.request_hash, e.action,
               e.model_class, e.quantity, e.occurred_at, e.workflow_run_id, e.step_index,
               e.labels, e.outcome, e.credits, s_tx[e.debit],
               coalesce(s_buckets[e.debit], '[]'::jsonb), e.input_tokens, e.output_tokens,
               e.tool_calls, e.vector_reads, e.orchestration_runs, e.gpu_seconds, e.cogs_minor,
               e.cogs_currency, coalesce(s_revenue[e.debit], 0),
               coalesce(s_currency[e.debit], p_currency, metering_currency_needed()),
               round(coalesce(s_after[e.debit], s_after[e.prior], v_before), 4),
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
         WHERE e.debit IS NULL OR s_status[e.debit] IN ('paid', 'replayed')
        RETURNING metering_usageevent.idempotency_key, metering_usageevent.id,
                  metering_usageevent.ledger_transaction_id, metering_usageevent.buckets,
                  metering_usageevent.revenue_minor, metering_usageevent.revenue_currency,
                  metering_usageevent.available_after
    )
    SELECT NULL::integer, NULL::text, NULL::bigint, NULL::numeric, NULL::numeric,
           NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric, NULL::text, NULL::text,
           NULL::numeric, NULL::bigint, i.idempotency_key::text, i.id, i.ledger_transaction_id,
           i.buckets, i.revenue_minor, i.revenue_currency::text, i.available_after
      FROM inserted i;
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
