package locate

import (
	"encoding/json"
	"testing"
)

// recordInSlow is the definition recordIn's fast path must agree with: the
// record's top-level field, as encoding/json decodes it, is in the batch.
func recordInSlow(line []byte, field string, ids idSet) bool {
	var rec map[string]json.RawMessage
	if json.Unmarshal(line, &rec) != nil {
		return false
	}
	var v string
	if json.Unmarshal(rec[field], &v) != nil {
		return false
	}
	return v != "" && ids.has(v)
}

func TestRecordInAgreesWithDecoding(t *testing.T) {
	ids := newIDSet([]string{idA, ""})
	for _, line := range []string{
		`{"contact_id":"` + idA + `","queue":"q"}`,
		`{"contact_id":"` + idB + `","queue":"q"}`,
		`{"contact_id" : "` + idA + `"}`,
		`{"meta":{"contact_id":"` + idB + `"},"contact_id":"` + idA + `"}`,
		`{"meta":{"contact_id":"` + idA + `"},"contact_id":"` + idB + `"}`,
		`{"contact_id":"` + idB + `","contact_id":"` + idA + `"}`,
		`{"\u0063ontact_id":"` + idA + `","meta":{"contact_id":"` + idB + `"}}`,
		`{"note":"\"contact_id\":\"` + idB + `","contact_id":"` + idA + `"}`,
		`{"\"contact_id":"` + idA + `"}`,
		`{"contact_id":"\u0030` + idA[1:] + `"}`,
		`{"contact_id":["` + idA + `"]}`,
		`{"a":"contact_id"}`,
		`{"contact_id":"` + idA,
		``,
		`not json "contact_id":"` + idA + `"`,
		`"contact_id":"` + idA + `"`,
		`{"contact_id":""}`,
	} {
		got := recordIn([]byte(line), quoted("contact_id"), ids)
		if want := recordInSlow([]byte(line), "contact_id", ids); got != want {
			t.Errorf("recordIn(%s) = %v, decoding says %v", line, got, want)
		}
	}
}

// FuzzRecordIn: the fast path never disagrees with decoding the record, so
// a record of the batch is never kept and no other record is dropped.
func FuzzRecordIn(f *testing.F) {
	f.Add(`{"contact_id":"`+idA+`"}`, idA)
	f.Add(`{"meta":{"contact_id":"`+idB+`"},"\u0063ontact_id":"`+idA+`"}`, idA)
	f.Add(`{"contact_id":"`+idB+`","contact_id":"`+idA+`"}`, idA)
	f.Add(`{"contact_id" :"`+idA+`"}`, idA)
	f.Fuzz(func(t *testing.T, line, id string) {
		ids := newIDSet([]string{id, idB})
		if got, want := recordIn([]byte(line), quoted("contact_id"), ids), recordInSlow([]byte(line), "contact_id", ids); got != want {
			t.Fatalf("recordIn(%q) = %v, decoding says %v", line, got, want)
		}
	})
}
