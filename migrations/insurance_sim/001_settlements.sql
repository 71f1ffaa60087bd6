-- The medical-insurance simulator's records: what the city system would
-- serve. Not a union source: only the simulator reads it, and only seed and
-- the simulator's admin endpoint write it.
CREATE TABLE insurance_sim.settlements (
    settlement_id          text PRIMARY KEY,
    national_id            text NOT NULL,
    hospital_code          text NOT NULL,
    hospital_name          text NOT NULL,
    admission_date         date NOT NULL,
    discharge_date         date NOT NULL CHECK (discharge_date >= admission_date),
    diagnosis_code         text NOT NULL,
    diagnosis_name         text,
    total_cost             numeric(12,2) NOT NULL,
    fund_paid              numeric(12,2) NOT NULL,
    self_pay_in_policy     numeric(12,2) NOT NULL,
    self_pay_out_of_policy numeric(12,2) NOT NULL,
    settled_at             timestamptz NOT NULL
);
CREATE INDEX settlements_person_idx ON insurance_sim.settlements (national_id, settled_at);

CREATE TABLE insurance_sim.coverage (
    national_id text PRIMARY KEY,
    insured     boolean NOT NULL,
    scheme      text,
    since       date
);
