package locate_test

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/disk"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// embeddedLocator is the default data map over empty embedded stores in a
// temporary directory.
func embeddedLocator(t *testing.T) *locate.Locator {
	t.Helper()
	dir := t.TempDir()
	m, err := locate.DefaultDataMap()
	if err != nil {
		t.Fatal(err)
	}
	idb, err := sqlite.Open(t.Context(), filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	wdb, err := sqlite.Open(t.Context(), filepath.Join(dir, "warehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idb.Close(); wdb.Close() })
	return &locate.Locator{Map: m, Rule: schemas.DefaultContactIDRule, Index: sqlite.NewIndex(idb),
		Objects: disk.New(filepath.Join(dir, "objects")), Warehouse: sqlite.NewWarehouse(wdb)}
}

func demoStores(l *locate.Locator) demo.Stores {
	return demo.Stores{Index: l.Index, Objects: l.Objects, Warehouse: l.Warehouse, DataMap: l.Map}
}

// dataMapWith is the default data map with each old text replaced by new.
func dataMapWith(t *testing.T, replace ...string) *locate.DataMap {
	t.Helper()
	raw := string(locate.DefaultDataMapYAML())
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(raw, replace[i]) {
			t.Fatalf("default data map has no %q", replace[i])
		}
		raw = strings.Replace(raw, replace[i], replace[i+1], 1)
	}
	m, err := locate.ParseDataMap([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-`)

// The default data map matches the stores the demo creates, with and
// without data in them.
func TestCheckAcceptsTheDefaultDataMap(t *testing.T) {
	for name, contacts := range map[string]int{"empty": 0, "seeded": 24} {
		t.Run(name, func(t *testing.T) {
			l := embeddedLocator(t)
			if _, err := demo.Seed(t.Context(), demoStores(l), demo.Options{Contacts: contacts, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			if err := l.Check(t.Context()); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

// Stores nobody created fail the check, every missing location listed.
func TestCheckListsMissingStores(t *testing.T) {
	l := embeddedLocator(t)
	err := l.Check(t.Context())
	if !errors.Is(err, stores.ErrPermanent) {
		t.Fatalf("Check of empty stores: %v, want a permanent error", err)
	}
	for _, want := range []string{
		`contact_date (index contacts)`, `contact-search/ctr_index (index ctr field contact_id)`,
		`data-warehouse/warehouse_records (table dw_contact_records column contact_id)`,
		`email-webform/email_thread_messages`, `voice/call_recordings (bucket erasure-connect`,
		`social/social_artefacts (bucket erasure-social`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not list %q:\n%v", want, err)
		}
	}
}

// Several mistakes in one data map are all reported at once, each naming
// its channel, artefact and store location, and none quoting a value.
func TestCheckListsEveryProblemAtOnce(t *testing.T) {
	l := embeddedLocator(t)
	if _, err := demo.Seed(t.Context(), demoStores(l), demo.Options{Contacts: 24, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	l.Map = dataMapWith(t,
		"table: dw_etr\n      column: contact_id", "table: dw_etr\n      column: contatc_id",
		"index: ctr\n      field: contact_id", "index: ctr\n      field: contactid",
		"parent_table: email_threads", "parent_table: email_thread",
		"bucket: erasure-social", "bucket: erasure-socail",
		"CallRecordings/{yyyy}/{mm}/{dd}/", "CallRecordings/{yyyy}-{mm}-{dd}/",
		`{dd}/"`+"\n      field: contact_id", `{dd}/"`+"\n      field: contact_ident",
	)
	err := l.Check(t.Context())
	if !errors.Is(err, stores.ErrPermanent) {
		t.Fatalf("Check: %v, want a permanent error", err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		`data-warehouse/warehouse_etrs (table dw_etr column contatc_id): warehouse: table "dw_etr" has no column "contatc_id"`,
		`contact-search/ctr_index (index ctr field contactid)`,
		`email-webform/email_thread_messages (table email_thread_messages column contact_id (shared with email_thread)): warehouse: table "email_thread" does not exist`,
		`social/social_artefacts (bucket erasure-socail`,
		`voice/call_recordings (bucket erasure-connect keys connect/{instance}/CallRecordings/{yyyy}-{mm}-{dd}/{contact_id}_*): none of the first`,
		`data-warehouse/data_lake_records (bucket erasure-datalake files contacts/dt={yyyy}-{mm}-{dd}/): the first record of a data-lake file under "contacts/dt=" has no text field "contact_ident"`,
		"(6 problems)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not list %q:\n%s", want, msg)
		}
	}
	if uuidRE.MatchString(msg) {
		t.Errorf("error quotes a contact ID:\n%s", msg)
	}
	// What is right is not reported.
	for _, ok := range []string{"voice/transcripts", "messaging/chat_messages", "warehouse_records", "contact_index"} {
		if strings.Contains(msg, ok) {
			t.Errorf("error lists %s, which matches its store:\n%s", ok, msg)
		}
	}
}
