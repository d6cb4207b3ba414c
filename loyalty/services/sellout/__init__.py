"""Sell-out imports: distributors' and the ERP's files of sale lines, checked, matched and posted in bulk.

One module per step, in the order a file goes through them:

    run.py      the service API (import_start, import_run) and the run: batches, progress, outcome
    pipeline.py a writer thread writes batch N while batch N+1 is prepared
    formats.py  reads a file: CSV (encoding, delimiter) or XLSX, rows of cells; local numbers and dates
    mapping.py  which column holds which of our fields: guesses, checks, saving a source's mapping
    parse.py    rows of cells -> typed sale lines, or why a row is refused (pure: no database)
    match.py    partners (aliases, legal ids), members and products the lines name
    write.py    COPY of the new lines with what each pays; the claims they confirm
    returns.py  returns: taking back what their original line earned
    errors.py   the refused lines: per batch, per run, the CSV download
    aliases.py  a source's partner aliases, uploaded as CSV

The rules are evaluated by loyalty.engine.bulk (LineEvaluator) and the points posted by
loyalty.services.ledger_bulk (ImportLedger); the task is loyalty.tasks.sellout, the back office
loyalty.admin.sellout.
"""
