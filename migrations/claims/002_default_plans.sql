-- The default schedule of ../shared/contract/RULES.md, as rows.
INSERT INTO claims.plans (code, name, premium, term_months, eligible_gender, waiting_days, sort_order) VALUES
    ('HCA', '住院+重疾+意外互助保障', 120.00, 12, NULL, 30, 1),
    ('SI5', '五年期在职职工大病互助保障', 250.00, 60, NULL, 30, 2),
    ('FW3', '三年期女职工互助保障', 90.00, 36, 'FEMALE', 30, 3);

INSERT INTO claims.plan_benefits
    (plan_code, kind, description, formula, rate, deductible, amount, cap_amount, cap_days, once_per_enrollment, diagnosis_list, waiting_period) VALUES
    ('HCA', 'MEDICAL', '住院医疗: 50% of the in-policy self-pay above 1000.00, at most 30000.00 per enrolment',
        'COPAY_SHARE', 0.5000, 1000.00, NULL, 30000.00, NULL, false, NULL, true),
    ('HCA', 'HOSPITAL_ALLOWANCE', '住院津贴: 50.00 a day in hospital, at most 180 days per enrolment',
        'DAILY_ALLOWANCE', NULL, NULL, 50.00, NULL, 180, false, NULL, true),
    ('HCA', 'CRITICAL_ILLNESS', '重大疾病: 10000.00 once per enrolment on a critical-illness diagnosis',
        'LUMP_SUM_ON_DIAGNOSIS', NULL, NULL, 10000.00, NULL, NULL, true, 'CRITICAL', true),
    ('HCA', 'DISABILITY', '意外伤残: 30000.00 × (11 − grade) / 10 for grade 1..10, no waiting period',
        'DISABILITY_GRADE', NULL, NULL, 30000.00, NULL, NULL, false, NULL, false),
    ('SI5', 'CRITICAL_ILLNESS', '大病: 5000.00 once per enrolment on a critical-illness diagnosis',
        'LUMP_SUM_ON_DIAGNOSIS', NULL, NULL, 5000.00, NULL, NULL, true, 'CRITICAL', true),
    ('FW3', 'CRITICAL_ILLNESS', '女职工特殊疾病: 8000.00 once per enrolment on a female-list diagnosis',
        'LUMP_SUM_ON_DIAGNOSIS', NULL, NULL, 8000.00, NULL, NULL, true, 'FEMALE', true);

INSERT INTO claims.diagnosis_lists (list_name, prefix_from, prefix_to) VALUES
    ('CRITICAL', 'C00', 'C97'),
    ('CRITICAL', 'I21', 'I21'),
    ('CRITICAL', 'I60', 'I60'),
    ('CRITICAL', 'I61', 'I61'),
    ('CRITICAL', 'I63', 'I63'),
    ('CRITICAL', 'N18.5', 'N18.5'),
    ('CRITICAL', 'N18.6', 'N18.6'),
    ('CRITICAL', 'Z94', 'Z94'),
    ('FEMALE', 'C50', 'C56');
