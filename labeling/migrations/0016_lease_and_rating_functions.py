"""The annotator loop's two hot calls as PL/pgSQL functions (PostgreSQL only).

`labeling_lease_next` does what `labeling.pool._take_slot` does with the ORM, and
`labeling_submit_rating` what `labeling.annotation.submit_rating` does, each in one round trip
instead of six to ten (the ORM path stays, for SQLite and behind the LABELING_SQL_PATH setting).
Neither writes the audit event: the caller records it from Python (`scrapannot.audit.record`, the
one writer of the trail) in the same transaction, after these functions took their row locks.
The stored values ('in_pool', 'active', 'eligible', ...) are those of the models' TextChoices.
"""

from django.db import migrations

LEASE_NEXT = """
CREATE OR REPLACE FUNCTION labeling_lease_next(
    p_annotator integer,
    p_now timestamptz,
    p_lease interval,
    p_random_share double precision,
    p_try_gold boolean,
    p_gold_statuses text[],
    p_uid uuid,
    p_pseudonym varchar
) RETURNS SETOF labeling_assignment
LANGUAGE plpgsql AS $$
DECLARE
    v_held labeling_assignment;
    v_car_id bigint;
    v_raters smallint;
    v_leases bigint;
    v_random boolean;
    v_slot integer;
BEGIN
    -- The lease already held (pool.current_assignment).
    SELECT a.* INTO v_held FROM labeling_assignment a
     WHERE a.annotator_id = p_annotator AND a.status = 'active' AND a.lease_expires_at > p_now
     ORDER BY a.leased_at LIMIT 1;
    IF FOUND THEN
        RETURN NEXT v_held;
        RETURN;
    END IF;

    -- A gold pick (pool._take_gold), only while ordinary work is waiting for this annotator.
    IF p_try_gold AND EXISTS (
        SELECT 1 FROM labeling_railcar r
         WHERE r.status = 'in_pool' AND r.open_slots > 0
           AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g WHERE g.railcar_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                            WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
    ) THEN
        SELECT r.id, r.raters_needed INTO v_car_id, v_raters FROM labeling_railcar r
         WHERE r.status = ANY (p_gold_statuses)
           AND EXISTS (SELECT 1 FROM labeling_goldrailcar g
                        WHERE g.railcar_id = r.id AND g.retired_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                            WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
         ORDER BY random() LIMIT 1
           FOR UPDATE OF r SKIP LOCKED;
        IF FOUND THEN
            -- Outside the slots: one past every slot this railcar ever had, under its row lock.
            SELECT coalesce(max(a.slot), 0) INTO v_slot FROM labeling_assignment a
             WHERE a.railcar_id = v_car_id;
            INSERT INTO labeling_assignment (
                uid, pseudonym, railcar_id, annotator_id, slot, status, leased_at,
                lease_expires_at, finished_at, release_reason, random_pick, gold_pick
            ) VALUES (
                p_uid, p_pseudonym, v_car_id, p_annotator, greatest(v_slot, v_raters) + 1,
                'active', p_now, p_now + p_lease, NULL, '', false, true
            ) RETURNING * INTO v_held;
            RETURN NEXT v_held;
            RETURN;
        END IF;
    END IF;

    -- A random pick or the priority order (pool.is_random_pick: the same float arithmetic).
    SELECT count(*) INTO v_leases FROM labeling_assignment a
     WHERE a.annotator_id = p_annotator AND NOT a.gold_pick;
    v_random := floor((v_leases + 1) * p_random_share) > floor(v_leases * p_random_share);

    IF v_random THEN
        SELECT r.id, r.raters_needed INTO v_car_id, v_raters FROM labeling_railcar r
         WHERE r.status = 'in_pool' AND r.open_slots > 0
           AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g WHERE g.railcar_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                            WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
         ORDER BY r.tiebreak LIMIT 1
           FOR UPDATE OF r SKIP LOCKED;
        IF NOT FOUND THEN
            -- Every candidate is locked by a concurrent request: wait for the first one instead
            -- of answering "no work" while slots remain. PostgreSQL re-checks the row once the
            -- lock is granted, so a railcar filled meanwhile is skipped.
            SELECT r.id, r.raters_needed INTO v_car_id, v_raters FROM labeling_railcar r
             WHERE r.status = 'in_pool' AND r.open_slots > 0
               AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g WHERE g.railcar_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                                WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
             ORDER BY r.tiebreak LIMIT 1
               FOR UPDATE OF r;
        END IF;
    ELSE
        SELECT r.id, r.raters_needed INTO v_car_id, v_raters FROM labeling_railcar r
         WHERE r.status = 'in_pool' AND r.open_slots > 0
           AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g WHERE g.railcar_id = r.id)
           AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                            WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
         ORDER BY r.priority DESC, r.created_at, r.tiebreak LIMIT 1
           FOR UPDATE OF r SKIP LOCKED;
        IF NOT FOUND THEN
            SELECT r.id, r.raters_needed INTO v_car_id, v_raters FROM labeling_railcar r
             WHERE r.status = 'in_pool' AND r.open_slots > 0
               AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g WHERE g.railcar_id = r.id)
               AND NOT EXISTS (SELECT 1 FROM labeling_assignment a
                                WHERE a.railcar_id = r.id AND a.annotator_id = p_annotator)
             ORDER BY r.priority DESC, r.created_at, r.tiebreak LIMIT 1
               FOR UPDATE OF r;
        END IF;
    END IF;
    IF v_car_id IS NULL THEN
        RETURN;  -- nothing for this annotator (the caller sweeps expired leases, looks again)
    END IF;

    -- The first free slot.
    SELECT min(s) INTO v_slot FROM generate_series(1, v_raters) AS s
     WHERE s NOT IN (SELECT a.slot FROM labeling_assignment a
                      WHERE a.railcar_id = v_car_id AND a.status IN ('active', 'submitted'));
    IF v_slot IS NULL THEN
        RAISE EXCEPTION 'railcar % has open slots but every slot is held', v_car_id;
    END IF;
    INSERT INTO labeling_assignment (
        uid, pseudonym, railcar_id, annotator_id, slot, status, leased_at, lease_expires_at,
        finished_at, release_reason, random_pick, gold_pick
    ) VALUES (
        p_uid, p_pseudonym, v_car_id, p_annotator, v_slot, 'active', p_now, p_now + p_lease,
        NULL, '', v_random, false
    ) RETURNING * INTO v_held;
    UPDATE labeling_railcar SET open_slots = open_slots - 1 WHERE id = v_car_id;
    RETURN NEXT v_held;
END
$$;
"""

SUBMIT_RATING = """
CREATE OR REPLACE FUNCTION labeling_submit_rating(
    p_uid uuid,
    p_annotator integer,
    p_now timestamptz,
    p_contamination_pct numeric,
    p_grade varchar,
    p_seconds_spent integer
) RETURNS TABLE (
    outcome text,
    rating_id bigint,
    rating_contamination_pct numeric,
    rating_grade varchar,
    rating_seconds_spent integer,
    rating_submitted_at timestamptz,
    assignment_id bigint,
    railcar_id bigint,
    excluded_frames integer,
    masks integer,
    closed boolean,
    raters_needed smallint
)
LANGUAGE plpgsql AS $$
DECLARE
    v_status varchar;
    v_expires timestamptz;
    v_left integer;
    v_car_status varchar;
BEGIN
    closed := false;
    SELECT a.id, a.railcar_id, a.status, a.lease_expires_at
      INTO assignment_id, railcar_id, v_status, v_expires
      FROM labeling_assignment a
     WHERE a.uid = p_uid AND a.annotator_id = p_annotator
       FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_yours';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_status = 'submitted' THEN
        -- A double click or a retried request: the first rating, unchanged.
        outcome := 'again';
        SELECT r.id, r.contamination_pct, r.grade, r.seconds_spent, r.submitted_at
          INTO rating_id, rating_contamination_pct, rating_grade, rating_seconds_spent,
               rating_submitted_at
          FROM labeling_rating r WHERE r.assignment_id = labeling_submit_rating.assignment_id;
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_status <> 'active' THEN
        outcome := 'lost';
        RETURN NEXT;
        RETURN;
    END IF;
    IF v_expires <= p_now THEN
        outcome := 'expired';
        RETURN NEXT;
        RETURN;
    END IF;

    SELECT count(*) INTO v_left FROM labeling_frame f
     WHERE f.railcar_id = labeling_submit_rating.railcar_id AND f.quality = 'eligible'
       AND NOT EXISTS (SELECT 1 FROM labeling_frameexclusion e
                        WHERE e.assignment_id = labeling_submit_rating.assignment_id
                          AND e.frame_id = f.id);
    IF v_left = 0 THEN
        outcome := 'nothing_left';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT count(*) INTO excluded_frames FROM labeling_frameexclusion e
     WHERE e.assignment_id = labeling_submit_rating.assignment_id;
    SELECT count(*) INTO masks FROM labeling_mask m
     WHERE m.assignment_id = labeling_submit_rating.assignment_id;

    INSERT INTO labeling_rating (
        assignment_id, railcar_id, annotator_id, contamination_pct, grade, seconds_spent,
        submitted_at
    ) VALUES (
        labeling_submit_rating.assignment_id, labeling_submit_rating.railcar_id, p_annotator,
        p_contamination_pct, p_grade, p_seconds_spent, p_now
    ) RETURNING id, contamination_pct, grade, seconds_spent, submitted_at
      INTO rating_id, rating_contamination_pct, rating_grade, rating_seconds_spent,
           rating_submitted_at;
    UPDATE labeling_assignment SET status = 'submitted', finished_at = p_now
     WHERE id = labeling_submit_rating.assignment_id;

    -- Close the railcar once its last needed rating is in (annotation._close_if_fully_rated),
    -- under its row lock; a gold railcar is never closed.
    SELECT c.status, c.raters_needed INTO v_car_status, raters_needed FROM labeling_railcar c
     WHERE c.id = labeling_submit_rating.railcar_id
       FOR UPDATE;
    IF v_car_status = 'in_pool'
       AND NOT EXISTS (SELECT 1 FROM labeling_goldrailcar g
                        WHERE g.railcar_id = labeling_submit_rating.railcar_id)
       AND (SELECT count(*) FROM labeling_rating r
             WHERE r.railcar_id = labeling_submit_rating.railcar_id) >= raters_needed THEN
        UPDATE labeling_railcar SET status = 'rated'
         WHERE id = labeling_submit_rating.railcar_id;
        closed := true;
    END IF;
    outcome := 'created';
    RETURN NEXT;
END
$$;
"""


def install(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LEASE_NEXT, params=None)
        schema_editor.execute(SUBMIT_RATING, params=None)


def uninstall(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS labeling_lease_next("
            "integer, timestamptz, interval, double precision, boolean, text[], uuid, varchar)"
        )
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS labeling_submit_rating("
            "uuid, integer, timestamptz, numeric, varchar, integer)"
        )


class Migration(migrations.Migration):
    dependencies = [("labeling", "0015_camera_baselines")]

    operations = [migrations.RunPython(install, uninstall)]
