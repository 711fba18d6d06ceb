-- Version 4 (ledger/migrations/0012): the debit of debit_v3.sql, for the same parameters
-- and with the same results, at about two thirds of its PostgreSQL CPU per charge
-- (bench/README.md, "Where the time goes"):
--
-- * Generic plans (`SET plan_cache_mode`). PL/pgSQL keeps each statement's plan, but by
--   default it plans a statement anew for every call's values (a "custom plan") while such a
--   plan looks cheaper than the generic one, and for these statements it always did: the read
--   after the lock alone was planned on every call (~0.35 ms). Every statement here reaches
--   its rows through a tenant-first index whatever the tenant, so one plan fits every call.
-- * Buckets are found by `unspent` (ledger/models.py), not by `remaining > 0`: the partial
--   indexes are conditioned on it, so that the update of a bucket's `remaining` is HOT.
-- * Fewer statements: the reads after the lock (expired credits, used keys, the overdraft
--   bucket) are one; the holds are read only when the batch names one; the writes (the
--   transactions, entries, buckets and account) are one statement after the one that draws
--   the transactions' ids, the overdraft bucket's change going with the other buckets'.
--
-- The debit, implemented once (docs/architecture.md, money invariant 7 and "The debit").
--
-- ledger_debit_batch spends credits for a batch of charges of ONE tenant in one call:
-- it takes the tenant's account lock, replays keys already used, checks each charge against
-- the available balance (and the contracted overdraft, and the hold it names), draws from the
-- tenant's buckets in consumption order (soonest expiry first, permanent last, then free before
-- paid, then oldest grant) reading only the buckets it needs off bucket_tenant_spendable_idx,
-- and writes one transaction per charge, one entry per bucket drawn, the changed buckets and
-- holds, and the account's totals. Nothing is written until every charge has been decided, so
-- a refusal that concerns the whole batch (an idempotency conflict, a hold that is not open)
-- leaves nothing behind, also inside a caller's transaction.
--
-- The clock comes from the caller: p_now dates the rows, p_spend_at (the later of p_now and
-- the clock) decides which buckets have expired. Results, one row per part drawn (a refused
-- charge: one row without a bucket; a whole-batch refusal: one row naming its slot):
--   status  paid | replayed | insufficient | conflict | hold_not_open
-- and, on every row, the account's watch level (CreditAccount.watch_level) for the listeners.
-- A new overdraft bucket is inserted only when a charge draws from it.
CREATE OR REPLACE FUNCTION ledger_debit_batch(
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
    p_memos text[]
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
    outbox_message_id bigint
) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan  -- planned once per connection (above)
AS $fn$
#variable_conflict use_column
DECLARE
    n integer := coalesce(array_length(p_keys, 1), 0);
    v_account bigint;
    v_limit numeric;
    v_reserved numeric;
    v_available numeric;
    v_before numeric;
    v_watch numeric;
    v_message bigint;
    v_expired numeric;
    -- per slot: the first slot with the same key, and the transaction already made with it
    v_first integer[];
    v_ex_id bigint[];
    v_ex_kind text[];
    v_ex_amount numeric[];
    -- holds named by the batch, re-read under the lock
    h_id bigint[];
    h_rem numeric[];
    h_orig numeric[];
    h_open boolean[];
    h_i integer;
    h_left numeric;
    -- buckets read so far, in consumption order
    cur refcursor;
    b_id bigint[] := '{}';
    b_rem numeric[] := '{}';
    b_orig numeric[] := '{}';
    b_cost numeric[] := '{}';
    b_cur text[] := '{}';
    b_pol text[] := '{}';
    b_n integer := 0;
    b_ptr integer := 1;
    b_done boolean := false;
    r record;
    -- the overdraft bucket (0 stands for one not inserted yet)
    od_id bigint;
    od_rem numeric := 0;
    od_orig numeric := 0;
    od_cost numeric := 0;
    od_cur text := 'USD';
    od_new boolean := false;
    -- totals drawn per policy
    d_monthly numeric := 0;
    d_permanent numeric := 0;
    d_rolling numeric := 0;
    -- results per slot
    s_status text[];
    s_tx integer[];       -- index of a new transaction
    s_txid bigint[];      -- id of a replayed one
    s_after numeric[];
    s_from_hold numeric[];
    s_pfrom integer[];
    s_pto integer[];
    -- new transactions
    t_n integer := 0;
    t_slot integer[] := '{}';
    t_from_hold numeric[] := '{}';
    t_ids bigint[];
    -- new entries
    e_n integer := 0;
    e_tx integer[] := '{}';
    e_part numeric[] := '{}';
    e_bucket bigint[] := '{}';
    e_after numeric[] := '{}';
    -- parts returned
    q_n integer := 0;
    q_bucket bigint[] := '{}';
    q_part numeric[] := '{}';
    q_cost numeric[] := '{}';
    q_cur text[] := '{}';
    q_pol text[] := '{}';
    -- one charge
    i integer;
    j integer;
    k integer;
    v_amount numeric;
    v_left numeric;
    v_drawn numeric;
    v_from_hold numeric;
    v_take numeric;
    v_charge_before numeric;
BEGIN
    -- The tenant's account lock, first and only (ledger/locks.py).
    SELECT a.id, a.overdraft_limit, a.reserved, a.available, a.watch_level
      INTO v_account, v_limit, v_reserved, v_available, v_watch
      FROM ledger_creditaccount a WHERE a.tenant_id = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ledger_creditaccount (
            tenant_id, overdraft_limit, reserved, topped_up_to, created_at,
            monthly_reset_total, permanent_total, rolling_12m_total, overdraft_used
        ) VALUES (p_tenant, 0, 0, 0, p_now, 0, 0, 0, 0)
        ON CONFLICT DO NOTHING;
        SELECT a.id, a.overdraft_limit, a.reserved, a.available, a.watch_level
          INTO v_account, v_limit, v_reserved, v_available, v_watch
          FROM ledger_creditaccount a WHERE a.tenant_id = p_tenant FOR UPDATE;
    END IF;
    IF NOT p_allow_overdraft THEN
        v_limit := 0;
    END IF;
    -- One read after the lock (each statement of this function sees what committed before it
    -- began, so what is read after the lock is current): the credits past their expiry, which
    -- leave the balance at once, swept or not (invariant 6); the keys already used; the
    -- overdraft bucket.
    SELECT coalesce((
               SELECT sum(b.remaining) FROM ledger_creditbucket b
                WHERE b.tenant_id = p_tenant AND b.unspent AND b.expires_at <= p_spend_at
           ), 0),
           k.first, k.ids, k.kinds, k.amounts, od.id, od.remaining, od.cost_basis_minor,
           od.currency
      INTO v_expired, v_first, v_ex_id, v_ex_kind, v_ex_amount, od_id, od_rem, od_cost, od_cur
      FROM (
        SELECT array_agg(k.first ORDER BY k.i) AS first, array_agg(tx.id ORDER BY k.i) AS ids,
               array_agg(tx.kind ORDER BY k.i) AS kinds,
               array_agg(tx.amount ORDER BY k.i) AS amounts
          FROM (SELECT u.key, u.i, min(u.i) OVER (PARTITION BY u.key) AS first
                  FROM unnest(p_keys) WITH ORDINALITY AS u(key, i)) k
          -- One probe of the unique (tenant, key) index per key. LATERAL with LIMIT 1 keeps
          -- the subquery from being flattened into a join: with stale statistics (a tenant
          -- that grew since the last ANALYZE) the planner would otherwise scan all the
          -- tenant's transactions and filter them by key.
          LEFT JOIN LATERAL (
                SELECT t.id, t.kind, t.amount FROM ledger_ledgertransaction t
                 WHERE t.tenant_id = p_tenant AND t.idempotency_key = k.key
                 LIMIT 1
          ) tx ON true
      ) k
      LEFT JOIN LATERAL (
            SELECT b.id, b.remaining, b.cost_basis_minor, b.currency
              FROM ledger_creditbucket b WHERE b.tenant_id = p_tenant AND b.is_overdraft
             LIMIT 1
      ) od ON true;
    v_available := v_available - v_expired;
    v_before := v_available;
    od_orig := coalesce(od_rem, 0);
    od_rem := coalesce(od_rem, 0);
    od_cost := coalesce(od_cost, 0);
    od_cur := coalesce(od_cur, 'USD');

    -- The holds the batch names, if any (usage events of a workflow step), re-read under the
    -- lock.
    IF array_remove(p_holds, NULL) <> '{}' THEN
        SELECT array_agg(h.id), array_agg(h.remaining), array_agg(h.remaining),
               array_agg(h.status = 'open')
          INTO h_id, h_rem, h_orig, h_open
          FROM ledger_credithold h
         WHERE h.tenant_id = p_tenant AND h.id = ANY(p_holds);
    END IF;

    OPEN cur FOR
        SELECT b.id, b.remaining, b.cost_basis_minor, b.currency, b.policy
          FROM ledger_creditbucket b
         WHERE b.tenant_id = p_tenant AND b.unspent
           AND (b.expires_at IS NULL OR b.expires_at > p_spend_at)
         ORDER BY b.expires_at ASC NULLS LAST, b.cost_basis_minor, b.granted_at, b.id;

    FOR i IN 1 .. n LOOP
        v_amount := p_amounts[i];
        j := v_first[i];
        IF j < i AND s_status[j] = 'paid' THEN
            -- The same key earlier in this batch.
            IF p_amounts[j] <> v_amount THEN
                RETURN QUERY SELECT i, 'conflict'::text, NULL::bigint, v_before, NULL::numeric,
                    NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric, NULL::text,
                    NULL::text, v_watch, NULL::bigint;
                RETURN;
            END IF;
            s_status[i] := 'replayed';
            s_tx[i] := s_tx[j];
            s_after[i] := s_after[j];
            s_from_hold[i] := s_from_hold[j];
            s_pfrom[i] := s_pfrom[j];
            s_pto[i] := s_pto[j];
            CONTINUE;
        END IF;
        IF v_ex_id[i] IS NOT NULL THEN
            -- A key used before: the original result, or a conflict.
            IF v_ex_kind[i] <> p_kind OR v_ex_amount[i] <> -v_amount THEN
                RETURN QUERY SELECT i, 'conflict'::text, NULL::bigint, v_before, NULL::numeric,
                    NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric, NULL::text,
                    NULL::text, v_watch, NULL::bigint;
                RETURN;
            END IF;
            s_status[i] := 'replayed';
            s_txid[i] := v_ex_id[i];
            s_pfrom[i] := q_n + 1;
            FOR r IN
                SELECT e.bucket_id, e.amount, e.balance_after, b.cost_basis_minor, b.currency,
                       b.policy
                  FROM ledger_ledgerentry e
                  JOIN ledger_creditbucket b ON b.id = e.bucket_id
                 WHERE e.tenant_id = p_tenant AND e.transaction_id = v_ex_id[i]
                 ORDER BY e.id
            LOOP
                q_n := q_n + 1;
                q_bucket[q_n] := r.bucket_id;
                q_part[q_n] := -r.amount;
                q_cost[q_n] := r.cost_basis_minor;
                q_cur[q_n] := r.currency;
                q_pol[q_n] := r.policy;
                s_after[i] := r.balance_after;
            END LOOP;
            s_pto[i] := q_n;
            SELECT tx.from_hold INTO v_from_hold
              FROM ledger_ledgertransaction tx WHERE tx.id = v_ex_id[i];
            s_from_hold[i] := v_from_hold;
            CONTINUE;
        END IF;

        -- A new charge: covered by the balance, the overdraft and its own hold? Written as
        -- amount <= available + limit + what the hold still reserves (not amount - from_hold
        -- <= available + limit) so that a hold whose credits partly expired can still spend
        -- what is left in the buckets: `available` is then negative, yet the hold's charges
        -- are paid while the buckets cover them. Other charges never take reserved credits.
        h_i := NULL;
        h_left := 0;
        IF p_holds[i] IS NOT NULL THEN
            h_i := array_position(h_id, p_holds[i]);
            IF h_i IS NULL OR NOT h_open[h_i] THEN
                RETURN QUERY SELECT i, 'hold_not_open'::text, NULL::bigint, v_before,
                    NULL::numeric, NULL::numeric, NULL::bigint, NULL::numeric, NULL::numeric,
                    NULL::text, NULL::text, v_watch, NULL::bigint;
                RETURN;
            END IF;
            h_left := h_rem[h_i];
        END IF;
        IF v_amount > v_available + v_limit + h_left THEN
            s_status[i] := 'insufficient';
            s_after[i] := v_available;
            CONTINUE;
        END IF;

        v_from_hold := least(v_amount, h_left);
        IF v_from_hold > 0 THEN
            h_rem[h_i] := h_rem[h_i] - v_from_hold;
            v_reserved := v_reserved - v_from_hold;
        END IF;
        v_charge_before := v_available;
        t_n := t_n + 1;
        t_slot[t_n] := i;
        t_from_hold[t_n] := v_from_hold;
        s_status[i] := 'paid';
        s_tx[i] := t_n;
        s_from_hold[i] := v_from_hold;
        s_pfrom[i] := q_n + 1;
        v_left := v_amount;
        v_drawn := 0;
        WHILE v_left > 0 LOOP
            WHILE b_ptr <= b_n AND b_rem[b_ptr] = 0 LOOP
                b_ptr := b_ptr + 1;
            END LOOP;
            IF b_ptr > b_n THEN
                EXIT WHEN b_done;
                FETCH cur INTO r;
                IF NOT FOUND THEN
                    b_done := true;
                    EXIT;
                END IF;
                b_n := b_n + 1;
                b_id[b_n] := r.id;
                b_rem[b_n] := r.remaining;
                b_orig[b_n] := r.remaining;
                b_cost[b_n] := r.cost_basis_minor;
                b_cur[b_n] := r.currency;
                b_pol[b_n] := r.policy;
                CONTINUE;
            END IF;
            v_take := least(b_rem[b_ptr], v_left);
            b_rem[b_ptr] := b_rem[b_ptr] - v_take;
            v_left := v_left - v_take;
            v_drawn := v_drawn + v_take;
            CASE b_pol[b_ptr]
                WHEN 'monthly_reset' THEN d_monthly := d_monthly + v_take;
                WHEN 'permanent' THEN d_permanent := d_permanent + v_take;
                ELSE d_rolling := d_rolling + v_take;
            END CASE;
            e_n := e_n + 1;
            e_tx[e_n] := t_n;
            e_part[e_n] := v_take;
            e_bucket[e_n] := b_id[b_ptr];
            e_after[e_n] := v_charge_before - greatest(0, v_drawn - v_from_hold);
            q_n := q_n + 1;
            q_bucket[q_n] := b_id[b_ptr];
            q_part[q_n] := v_take;
            q_cost[q_n] := b_cost[b_ptr];
            q_cur[q_n] := b_cur[b_ptr];
            q_pol[q_n] := b_pol[b_ptr];
        END LOOP;
        IF v_left > 0 THEN
            -- What the buckets cannot pay, the contracted overdraft lends.
            IF od_id IS NULL THEN
                od_new := true;
                od_id := 0;
            END IF;
            od_rem := od_rem - v_left;
            v_drawn := v_drawn + v_left;
            e_n := e_n + 1;
            e_tx[e_n] := t_n;
            e_part[e_n] := v_left;
            e_bucket[e_n] := od_id;
            e_after[e_n] := v_charge_before - greatest(0, v_drawn - v_from_hold);
            q_n := q_n + 1;
            q_bucket[q_n] := od_id;
            q_part[q_n] := v_left;
            q_cost[q_n] := od_cost;
            q_cur[q_n] := od_cur;
            q_pol[q_n] := 'permanent';
        END IF;
        s_pto[i] := q_n;
        v_available := v_available - (v_amount - v_from_hold);
        s_after[i] := v_available;
    END LOOP;
    CLOSE cur;

    IF t_n > 0 THEN
        IF od_new THEN
            INSERT INTO ledger_creditbucket (
                tenant_id, source, policy, granted, remaining, granted_at, expires_at,
                price_minor, currency, cost_basis_minor, external_reference, is_overdraft,
                created_at
            ) VALUES (
                p_tenant, 'overdraft', 'permanent', 0, od_rem, p_now, NULL, 0, 'USD', 0,
                'overdraft', true, p_now
            ) RETURNING id INTO od_id;
            FOR k IN 1 .. e_n LOOP
                IF e_bucket[k] = 0 THEN e_bucket[k] := od_id; END IF;
            END LOOP;
            FOR k IN 1 .. q_n LOOP
                IF q_bucket[k] = 0 THEN q_bucket[k] := od_id; END IF;
            END LOOP;
        ELSIF od_rem <> od_orig THEN
            -- The overdraft bucket changes with the others (it is never among those read: its
            -- remaining is at most zero).
            b_id := b_id || od_id;
            b_rem := b_rem || od_rem;
            b_orig := b_orig || od_orig;
        END IF;

        -- The new transactions' ids first (the entries and the results name them), then
        -- every write in one statement: the transactions, the buckets, the account and the
        -- entries (these in the order drawn, as the ids they get: a replay returns the parts
        -- by entry id).
        SELECT array_agg(nextval(pg_get_serial_sequence('ledger_ledgertransaction', 'id')))
          INTO t_ids FROM generate_series(1, t_n);
        WITH tx AS (
            INSERT INTO ledger_ledgertransaction (
                id, tenant_id, kind, amount, from_hold, idempotency_key, source_type,
                source_id, hold_id, reverses_id, actor_id, memo, created_at
            )
            SELECT t_ids[t.k], p_tenant, p_kind, -p_amounts[t.i], t.from_hold, p_keys[t.i],
                   p_source_types[t.i], p_source_ids[t.i], p_holds[t.i], NULL, p_actor,
                   p_memos[t.i], p_now
              FROM unnest(t_slot, t_from_hold) WITH ORDINALITY AS t(i, from_hold, k)
        ), bu AS (
            UPDATE ledger_creditbucket b SET remaining = u.rem
              FROM unnest(b_id, b_rem, b_orig) AS u(id, rem, orig)
             WHERE u.rem <> u.orig AND b.tenant_id = p_tenant AND b.id = u.id
        ), ac AS (
            UPDATE ledger_creditaccount a
               SET reserved = v_reserved,
                   monthly_reset_total = a.monthly_reset_total - d_monthly,
                   permanent_total = a.permanent_total - d_permanent,
                   rolling_12m_total = a.rolling_12m_total - d_rolling,
                   overdraft_used = a.overdraft_used + (od_orig - od_rem)
             WHERE a.id = v_account
        )
        INSERT INTO ledger_ledgerentry (
            tenant_id, transaction_id, kind, amount, bucket_id, hold_id, balance_after,
            created_at
        )
        SELECT p_tenant, t_ids[e.t], p_kind, -e.part, e.bucket, p_holds[t_slot[e.t]], e.after,
               p_now
          FROM unnest(e_tx, e_part, e_bucket, e_after) AS e(t, part, bucket, after);
        IF h_id IS NOT NULL THEN
            UPDATE ledger_credithold h SET remaining = u.rem
              FROM unnest(h_id, h_rem, h_orig) AS u(id, rem, orig)
             WHERE u.rem <> u.orig AND h.tenant_id = p_tenant AND h.id = u.id;
        END IF;
        -- No level yet (the evaluation every grant asks for has not run): zero is watched.
        IF (v_before >= coalesce(v_watch, 0) AND v_available < coalesce(v_watch, 0))
           OR (v_before > 0 AND v_available <= 0) THEN
            INSERT INTO tenants_outboxmessage (
                task, kwargs, once, created_at, next_attempt_at, attempts
            ) VALUES (
                'ledger.watch_crossed', jsonb_build_object('tenant_id', p_tenant), false, p_now,
                p_now + interval '2 minutes', 0
            ) RETURNING id INTO v_message;
        END IF;
    END IF;

    FOR i IN 1 .. n LOOP
        slot := i;
        status := s_status[i];
        watch_level := v_watch;
        outbox_message_id := v_message;
        available_before := v_before;
        available_after := s_after[i];
        from_hold := s_from_hold[i];
        transaction_id := CASE WHEN s_tx[i] IS NOT NULL THEN t_ids[s_tx[i]] ELSE s_txid[i] END;
        IF status = 'insufficient' THEN
            bucket_id := NULL;
            part := NULL;
            cost_basis_minor := NULL;
            currency := NULL;
            policy := NULL;
            RETURN NEXT;
            CONTINUE;
        END IF;
        FOR k IN s_pfrom[i] .. s_pto[i] LOOP
            bucket_id := q_bucket[k];
            part := q_part[k];
            cost_basis_minor := q_cost[k];
            currency := q_cur[k];
            policy := q_pol[k];
            RETURN NEXT;
        END LOOP;
    END LOOP;
END;
$fn$;
