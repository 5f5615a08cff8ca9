-- Pre-aggregated figures per model, month (`YYYY-MM`) and approved or
-- not, so a rollup over whole months reads tens of thousands of rows
-- instead of every record of the period. Triggers on the read model's
-- own rows keep them: whatever writes a record or incident row (a merge,
-- the start-up rebuild, `migrate-store`) changes them in the same
-- statement, so they can never disagree with the rows they sum. A row
-- whose count falls to 0 is deleted: the tables hold exactly what the
-- live rows add up to, whatever order the rows were written in.
CREATE TABLE rm_monthly (
    model               TEXT NOT NULL,
    month               TEXT NOT NULL,
    approved            INTEGER NOT NULL,
    -- Live (not deleted) records; the row goes when it reaches 0.
    records             INTEGER NOT NULL,
    patrols             INTEGER NOT NULL,
    incidents           INTEGER NOT NULL,
    handed_to_police    INTEGER NOT NULL,
    supported_police    INTEGER NOT NULL,
    money_vnd           INTEGER NOT NULL,
    workdays            REAL NOT NULL,
    houses              INTEGER NOT NULL,
    production_records  INTEGER NOT NULL,
    revenue_vnd         INTEGER NOT NULL,
    meetings            INTEGER NOT NULL,
    attendees           INTEGER NOT NULL,
    PRIMARY KEY (model, month, approved)
) WITHOUT ROWID;

-- Incidents of live patrols, as rm_incidents holds them.
CREATE TABLE rm_monthly_incidents (
    model      TEXT NOT NULL,
    month      TEXT NOT NULL,
    approved   INTEGER NOT NULL,
    category   TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    incidents  INTEGER NOT NULL,
    PRIMARY KEY (model, month, approved, category, outcome)
) WITHOUT ROWID;

-- Households supported are counted distinct over a period, which sums
-- cannot give: each (model, month, receiver) is kept with how many live
-- support records name it, and a rollup counts distinct receivers over
-- the months it covers.
CREATE TABLE rm_monthly_receivers (
    model     TEXT NOT NULL,
    month     TEXT NOT NULL,
    approved  INTEGER NOT NULL,
    receiver  TEXT NOT NULL,
    records   INTEGER NOT NULL,
    PRIMARY KEY (model, month, approved, receiver)
) WITHOUT ROWID;

-- A record row's contribution: added for a live row, taken away again
-- when the row changes or goes. The upserts need their SELECT's WHERE
-- (SQLite's parser otherwise reads ON CONFLICT as a join's).
CREATE TRIGGER rm_records_monthly_insert AFTER INSERT ON rm_records WHEN NEW.deleted = 0
BEGIN
    INSERT INTO rm_monthly (model, month, approved, records, patrols, incidents, handed_to_police,
        supported_police, money_vnd, workdays, houses, production_records, revenue_vnd, meetings, attendees)
    SELECT NEW.model, substr(NEW.occurred_on, 1, 7), NEW.review_state = 'approved', 1, NEW.kind = 'patrol',
        NEW.incidents, NEW.handed_to_police, NEW.supported_police, NEW.amount_vnd, NEW.workdays, NEW.houses,
        NEW.kind = 'production', NEW.revenue_vnd, NEW.kind = 'meeting', NEW.attendees
    WHERE true
    ON CONFLICT (model, month, approved) DO UPDATE SET records = records + excluded.records,
        patrols = patrols + excluded.patrols, incidents = incidents + excluded.incidents,
        handed_to_police = handed_to_police + excluded.handed_to_police,
        supported_police = supported_police + excluded.supported_police,
        money_vnd = money_vnd + excluded.money_vnd, workdays = workdays + excluded.workdays,
        houses = houses + excluded.houses, production_records = production_records + excluded.production_records,
        revenue_vnd = revenue_vnd + excluded.revenue_vnd, meetings = meetings + excluded.meetings,
        attendees = attendees + excluded.attendees;
    INSERT INTO rm_monthly_receivers (model, month, approved, receiver, records)
    SELECT NEW.model, substr(NEW.occurred_on, 1, 7), NEW.review_state = 'approved', NEW.receiver, 1
    WHERE NEW.kind = 'household_support' AND NEW.receiver IS NOT NULL
    ON CONFLICT (model, month, approved, receiver) DO UPDATE SET records = records + excluded.records;
END;

CREATE TRIGGER rm_records_monthly_delete AFTER DELETE ON rm_records WHEN OLD.deleted = 0
BEGIN
    UPDATE rm_monthly SET records = records - 1, patrols = patrols - (OLD.kind = 'patrol'),
        incidents = incidents - OLD.incidents, handed_to_police = handed_to_police - OLD.handed_to_police,
        supported_police = supported_police - OLD.supported_police, money_vnd = money_vnd - OLD.amount_vnd,
        workdays = workdays - OLD.workdays, houses = houses - OLD.houses,
        production_records = production_records - (OLD.kind = 'production'),
        revenue_vnd = revenue_vnd - OLD.revenue_vnd, meetings = meetings - (OLD.kind = 'meeting'),
        attendees = attendees - OLD.attendees
    WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7) AND approved = (OLD.review_state = 'approved');
    DELETE FROM rm_monthly WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND records = 0;
    UPDATE rm_monthly_receivers SET records = records - 1
    WHERE OLD.kind = 'household_support' AND model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND receiver = OLD.receiver;
    DELETE FROM rm_monthly_receivers WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND receiver = OLD.receiver AND records = 0;
END;

-- An update is the old row taken away and the new one added; one that
-- leaves every counted column as it was (a note, a review comment, the
-- rebuild writing a row again) costs only this comparison.
CREATE TRIGGER rm_records_monthly_update AFTER UPDATE ON rm_records
WHEN OLD.model IS NOT NEW.model OR substr(OLD.occurred_on, 1, 7) IS NOT substr(NEW.occurred_on, 1, 7)
    OR OLD.deleted IS NOT NEW.deleted OR (OLD.review_state = 'approved') IS NOT (NEW.review_state = 'approved')
    OR OLD.kind IS NOT NEW.kind OR OLD.incidents IS NOT NEW.incidents
    OR OLD.handed_to_police IS NOT NEW.handed_to_police OR OLD.supported_police IS NOT NEW.supported_police
    OR OLD.amount_vnd IS NOT NEW.amount_vnd OR OLD.workdays IS NOT NEW.workdays OR OLD.houses IS NOT NEW.houses
    OR OLD.revenue_vnd IS NOT NEW.revenue_vnd OR OLD.attendees IS NOT NEW.attendees
    OR OLD.receiver IS NOT NEW.receiver
BEGIN
    UPDATE rm_monthly SET records = records - 1, patrols = patrols - (OLD.kind = 'patrol'),
        incidents = incidents - OLD.incidents, handed_to_police = handed_to_police - OLD.handed_to_police,
        supported_police = supported_police - OLD.supported_police, money_vnd = money_vnd - OLD.amount_vnd,
        workdays = workdays - OLD.workdays, houses = houses - OLD.houses,
        production_records = production_records - (OLD.kind = 'production'),
        revenue_vnd = revenue_vnd - OLD.revenue_vnd, meetings = meetings - (OLD.kind = 'meeting'),
        attendees = attendees - OLD.attendees
    WHERE OLD.deleted = 0 AND model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved');
    DELETE FROM rm_monthly WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND records = 0;
    UPDATE rm_monthly_receivers SET records = records - 1
    WHERE OLD.deleted = 0 AND OLD.kind = 'household_support' AND model = OLD.model
        AND month = substr(OLD.occurred_on, 1, 7) AND approved = (OLD.review_state = 'approved')
        AND receiver = OLD.receiver;
    DELETE FROM rm_monthly_receivers WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND receiver = OLD.receiver AND records = 0;
    INSERT INTO rm_monthly (model, month, approved, records, patrols, incidents, handed_to_police,
        supported_police, money_vnd, workdays, houses, production_records, revenue_vnd, meetings, attendees)
    SELECT NEW.model, substr(NEW.occurred_on, 1, 7), NEW.review_state = 'approved', 1, NEW.kind = 'patrol',
        NEW.incidents, NEW.handed_to_police, NEW.supported_police, NEW.amount_vnd, NEW.workdays, NEW.houses,
        NEW.kind = 'production', NEW.revenue_vnd, NEW.kind = 'meeting', NEW.attendees
    WHERE NEW.deleted = 0
    ON CONFLICT (model, month, approved) DO UPDATE SET records = records + excluded.records,
        patrols = patrols + excluded.patrols, incidents = incidents + excluded.incidents,
        handed_to_police = handed_to_police + excluded.handed_to_police,
        supported_police = supported_police + excluded.supported_police,
        money_vnd = money_vnd + excluded.money_vnd, workdays = workdays + excluded.workdays,
        houses = houses + excluded.houses, production_records = production_records + excluded.production_records,
        revenue_vnd = revenue_vnd + excluded.revenue_vnd, meetings = meetings + excluded.meetings,
        attendees = attendees + excluded.attendees;
    INSERT INTO rm_monthly_receivers (model, month, approved, receiver, records)
    SELECT NEW.model, substr(NEW.occurred_on, 1, 7), NEW.review_state = 'approved', NEW.receiver, 1
    WHERE NEW.deleted = 0 AND NEW.kind = 'household_support' AND NEW.receiver IS NOT NULL
    ON CONFLICT (model, month, approved, receiver) DO UPDATE SET records = records + excluded.records;
END;

-- rm_incidents holds the incidents of live patrols only, rewritten with
-- their record: each row counts one.
CREATE TRIGGER rm_incidents_monthly_insert AFTER INSERT ON rm_incidents
BEGIN
    INSERT INTO rm_monthly_incidents (model, month, approved, category, outcome, incidents)
    SELECT NEW.model, substr(NEW.occurred_on, 1, 7), NEW.review_state = 'approved', NEW.category, NEW.outcome, 1
    WHERE true
    ON CONFLICT (model, month, approved, category, outcome) DO UPDATE SET incidents = incidents + 1;
END;

CREATE TRIGGER rm_incidents_monthly_delete AFTER DELETE ON rm_incidents
BEGIN
    UPDATE rm_monthly_incidents SET incidents = incidents - 1
    WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7) AND approved = (OLD.review_state = 'approved')
        AND category = OLD.category AND outcome = OLD.outcome;
    DELETE FROM rm_monthly_incidents WHERE model = OLD.model AND month = substr(OLD.occurred_on, 1, 7)
        AND approved = (OLD.review_state = 'approved') AND category = OLD.category AND outcome = OLD.outcome
        AND incidents = 0;
END;

-- The rows already stored, summed once: the same figures the triggers
-- would have kept, so an existing store needs no rebuild from documents.
INSERT INTO rm_monthly (model, month, approved, records, patrols, incidents, handed_to_police, supported_police,
    money_vnd, workdays, houses, production_records, revenue_vnd, meetings, attendees)
SELECT model, substr(occurred_on, 1, 7), review_state = 'approved', COUNT(*), SUM(kind = 'patrol'), SUM(incidents),
    SUM(handed_to_police), SUM(supported_police), SUM(amount_vnd), SUM(workdays), SUM(houses),
    SUM(kind = 'production'), SUM(revenue_vnd), SUM(kind = 'meeting'), SUM(attendees)
FROM rm_records WHERE deleted = 0 GROUP BY 1, 2, 3;
INSERT INTO rm_monthly_incidents (model, month, approved, category, outcome, incidents)
SELECT model, substr(occurred_on, 1, 7), review_state = 'approved', category, outcome, COUNT(*)
FROM rm_incidents GROUP BY 1, 2, 3, 4, 5;
INSERT INTO rm_monthly_receivers (model, month, approved, receiver, records)
SELECT model, substr(occurred_on, 1, 7), review_state = 'approved', receiver, COUNT(*)
FROM rm_records WHERE deleted = 0 AND kind = 'household_support' AND receiver IS NOT NULL GROUP BY 1, 2, 3, 4;
