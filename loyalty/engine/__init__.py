"""The rule engine, pure Python over value objects (no database writes): rules.py evaluates an event against the
compiled rules, formulas.py holds one class per formula, limits.py applies caps and budgets, bulk.py evaluates
many sale lines at once and facts.py gathers an event's facts. Services call it; it never calls them."""
