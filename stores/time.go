package stores

import "time"

// TimeLayout is RFC 3339 with a fixed nine-digit fraction: still parseable
// as RFC3339Nano, and fixed-width in UTC, so stored times sort and compare
// correctly as strings.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime is how the stores write a timestamp as text.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime reads a stored timestamp, in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
