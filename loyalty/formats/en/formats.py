# English dates the way the rest of the site writes them (loyalty.common.formatting.DAY_FORMAT): day, month, year, and
# a 24-hour clock. Django's default English formats are American ("12/07/2026 6:53 a.m."), which a reader in the UK or
# Europe reads as 12 July.
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
