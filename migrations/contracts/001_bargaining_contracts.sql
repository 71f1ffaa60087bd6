-- The contracts source: collective bargaining contracts (工资集体协商,
-- 专项集体合同, 要约行动 campaigns). employer_id and organization_id are plain
-- ids into the members source.
CREATE TABLE contracts.contracts (
    id                    text PRIMARY KEY CHECK (id <> ''),
    title                 text NOT NULL CHECK (title <> ''),
    kind                  text NOT NULL CHECK (kind IN ('COMPREHENSIVE', 'WAGE', 'LABOR_SAFETY', 'FEMALE_PROTECTION',
                                                        'OCCUPATIONAL_HEALTH', 'TECH_INNOVATION', 'SKILL_LEVEL_WAGE')),
    status                text NOT NULL CHECK (status IN ('OFFERED', 'NEGOTIATING', 'SIGNED', 'FILED', 'EXPIRED')),
    employer_id           text NOT NULL,
    organization_id       text NOT NULL,
    campaign              text,
    effective_from        date,
    effective_to          date CHECK (effective_to IS NULL OR effective_from IS NULL OR effective_to >= effective_from),
    covered_workers       integer NOT NULL CHECK (covered_workers >= 0),
    wage_increase_percent numeric(5,2),
    signed_on             date
);
CREATE INDEX contracts_organization_idx ON contracts.contracts (organization_id, id);
CREATE INDEX contracts_employer_idx ON contracts.contracts (employer_id, id);
CREATE INDEX contracts_campaign_idx ON contracts.contracts (campaign) WHERE campaign IS NOT NULL;
