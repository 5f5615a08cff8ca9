-- Pre-aggregated figures per model, month (`YYYY-MM`) and approved or
-- not, so a rollup over whole months reads tens of thousands of rows
-- instead of every record of the period. Triggers on the read model's
-- own rows keep them: whatever writes a record or incident row (a merge,
-- the start-up rebuild, `migrate-store`) changes them in the same
-- statement and transaction, with the deltas added in SQL
-- (`x = x + excluded.x` on the row locked by the upsert), so several
-- processes writing at once add up and never overwrite each other. A row
-- whose count falls to 0 is deleted: the tables hold exactly what the
-- live rows add up to, whatever order the rows were written in.
CREATE TABLE rm_monthly (
    model               TEXT NOT NULL,
    month               TEXT NOT NULL,
    approved            BOOLEAN NOT NULL,
    -- Live (not deleted) records; the row goes when it reaches 0.
    records             BIGINT NOT NULL,
    patrols             BIGINT NOT NULL,
    incidents           BIGINT NOT NULL,
    handed_to_police    BIGINT NOT NULL,
    supported_police    BIGINT NOT NULL,
    money_vnd           BIGINT NOT NULL,
    workdays            DOUBLE PRECISION NOT NULL,
    houses              BIGINT NOT NULL,
    production_records  BIGINT NOT NULL,
    revenue_vnd         BIGINT NOT NULL,
    meetings            BIGINT NOT NULL,
    attendees           BIGINT NOT NULL,
    PRIMARY KEY (model, month, approved)
);

-- Incidents of live patrols, as rm_incidents holds them.
CREATE TABLE rm_monthly_incidents (
    model      TEXT NOT NULL,
    month      TEXT NOT NULL,
    approved   BOOLEAN NOT NULL,
    category   TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    incidents  BIGINT NOT NULL,
    PRIMARY KEY (model, month, approved, category, outcome)
);

-- Households supported are counted distinct over a period, which sums
-- cannot give: each (model, month, receiver) is kept with how many live
-- support records name it, and a rollup counts distinct receivers over
-- the months it covers.
CREATE TABLE rm_monthly_receivers (
    model     TEXT NOT NULL,
    month     TEXT NOT NULL,
    approved  BOOLEAN NOT NULL,
    receiver  TEXT NOT NULL,
    records   BIGINT NOT NULL,
    PRIMARY KEY (model, month, approved, receiver)
);

-- Adds a record row's contribution `sign` times (1 or -1); a live row only.
CREATE FUNCTION rm_monthly_add(r rm_records, sign BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF r.deleted THEN
        RETURN;
    END IF;
    INSERT INTO rm_monthly AS m (model, month, approved, records, patrols, incidents, handed_to_police,
        supported_police, money_vnd, workdays, houses, production_records, revenue_vnd, meetings, attendees)
    VALUES (r.model, left(r.occurred_on, 7), r.review_state = 'approved', sign,
        sign * (r.kind = 'patrol')::int, sign * r.incidents, sign * r.handed_to_police, sign * r.supported_police,
        sign * r.amount_vnd, sign * r.workdays, sign * r.houses, sign * (r.kind = 'production')::int,
        sign * r.revenue_vnd, sign * (r.kind = 'meeting')::int, sign * r.attendees)
    ON CONFLICT (model, month, approved) DO UPDATE SET records = m.records + excluded.records,
        patrols = m.patrols + excluded.patrols, incidents = m.incidents + excluded.incidents,
        handed_to_police = m.handed_to_police + excluded.handed_to_police,
        supported_police = m.supported_police + excluded.supported_police,
        money_vnd = m.money_vnd + excluded.money_vnd, workdays = m.workdays + excluded.workdays,
        houses = m.houses + excluded.houses, production_records = m.production_records + excluded.production_records,
        revenue_vnd = m.revenue_vnd + excluded.revenue_vnd, meetings = m.meetings + excluded.meetings,
        attendees = m.attendees + excluded.attendees;
    IF sign < 0 THEN
        DELETE FROM rm_monthly WHERE model = r.model AND month = left(r.occurred_on, 7)
            AND approved = (r.review_state = 'approved') AND records = 0;
    END IF;
    IF r.kind = 'household_support' AND r.receiver IS NOT NULL THEN
        INSERT INTO rm_monthly_receivers AS m (model, month, approved, receiver, records)
        VALUES (r.model, left(r.occurred_on, 7), r.review_state = 'approved', r.receiver, sign)
        ON CONFLICT (model, month, approved, receiver) DO UPDATE SET records = m.records + excluded.records;
        IF sign < 0 THEN
            DELETE FROM rm_monthly_receivers WHERE model = r.model AND month = left(r.occurred_on, 7)
                AND approved = (r.review_state = 'approved') AND receiver = r.receiver AND records = 0;
        END IF;
    END IF;
END $$;

-- The row's old contribution taken away and its new one added. An update
-- that leaves every counted column as it was (a note, a review comment,
-- the rebuild writing a row again) costs only the comparison.
CREATE FUNCTION rm_records_monthly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.model, left(OLD.occurred_on, 7), OLD.deleted, OLD.review_state = 'approved',
            OLD.kind, OLD.incidents, OLD.handed_to_police, OLD.supported_police, OLD.amount_vnd, OLD.workdays,
            OLD.houses, OLD.revenue_vnd, OLD.attendees, OLD.receiver)
        IS NOT DISTINCT FROM (NEW.model, left(NEW.occurred_on, 7), NEW.deleted, NEW.review_state = 'approved',
            NEW.kind, NEW.incidents, NEW.handed_to_police, NEW.supported_police, NEW.amount_vnd, NEW.workdays,
            NEW.houses, NEW.revenue_vnd, NEW.attendees, NEW.receiver) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM rm_monthly_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM rm_monthly_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER rm_records_monthly AFTER INSERT OR UPDATE OR DELETE ON rm_records
    FOR EACH ROW EXECUTE FUNCTION rm_records_monthly();

-- rm_incidents holds the incidents of live patrols only, rewritten with
-- their record: each row counts one.
CREATE FUNCTION rm_incidents_monthly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rm_monthly_incidents AS m (model, month, approved, category, outcome, incidents)
        VALUES (NEW.model, left(NEW.occurred_on, 7), NEW.review_state = 'approved', NEW.category, NEW.outcome, 1)
        ON CONFLICT (model, month, approved, category, outcome) DO UPDATE SET incidents = m.incidents + 1;
    ELSE
        UPDATE rm_monthly_incidents SET incidents = incidents - 1
        WHERE model = OLD.model AND month = left(OLD.occurred_on, 7) AND approved = (OLD.review_state = 'approved')
            AND category = OLD.category AND outcome = OLD.outcome;
        DELETE FROM rm_monthly_incidents WHERE model = OLD.model AND month = left(OLD.occurred_on, 7)
            AND approved = (OLD.review_state = 'approved') AND category = OLD.category AND outcome = OLD.outcome
            AND incidents = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER rm_incidents_monthly AFTER INSERT OR DELETE ON rm_incidents
    FOR EACH ROW EXECUTE FUNCTION rm_incidents_monthly();

-- The rows already stored, summed once: the same figures the triggers
-- would have kept, so an existing store needs no rebuild from documents.
INSERT INTO rm_monthly (model, month, approved, records, patrols, incidents, handed_to_police, supported_police,
    money_vnd, workdays, houses, production_records, revenue_vnd, meetings, attendees)
SELECT model, left(occurred_on, 7), review_state = 'approved', COUNT(*), COUNT(*) FILTER (WHERE kind = 'patrol'),
    SUM(incidents), SUM(handed_to_police), SUM(supported_police), SUM(amount_vnd), SUM(workdays), SUM(houses),
    COUNT(*) FILTER (WHERE kind = 'production'), SUM(revenue_vnd), COUNT(*) FILTER (WHERE kind = 'meeting'),
    SUM(attendees)
FROM rm_records WHERE NOT deleted GROUP BY 1, 2, 3;
INSERT INTO rm_monthly_incidents (model, month, approved, category, outcome, incidents)
SELECT model, left(occurred_on, 7), review_state = 'approved', category, outcome, COUNT(*)
FROM rm_incidents GROUP BY 1, 2, 3, 4, 5;
INSERT INTO rm_monthly_receivers (model, month, approved, receiver, records)
SELECT model, left(occurred_on, 7), review_state = 'approved', receiver, COUNT(*)
FROM rm_records WHERE NOT deleted AND kind = 'household_support' AND receiver IS NOT NULL GROUP BY 1, 2, 3, 4;
