package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/schemas"
)

// Contact IDs in the default (Amazon Connect) form.
const (
	idA = "0b0e6d3c-4a77-4e53-9d5e-1c2d3e4f5a6b"
	idB = "7f1c2b3a-9e8d-4c6b-a5f4-e3d2c1b0a987"
	idC = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
	idD = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
)

func checkWith(t testing.TB) func([]string) error {
	rule, err := schemas.NewContactIDRule("")
	if err != nil {
		t.Fatal(err)
	}
	return func(ids []string) error {
		return rule.ValidateSubmission(schemas.Submission{ContactIDs: ids, RequestedBy: "ops", Source: schemas.SourceCLI})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// spooled is what the second pass reads, in batches of n.
func spooled(t *testing.T, in *bulkInput, n int) [][]string {
	t.Helper()
	var out [][]string
	if err := in.spool.batches(n, func(ids []string) error {
		out = append(out, slices.Clone(ids))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBulkInputCSVColumn(t *testing.T) {
	// A spreadsheet export: byte order mark, the ID in the second column,
	// a quoted field over two lines, a row without an ID, ragged rows and
	// padding around a value.
	csv := "\uFEFFname,contact_id,notes\n" +
		"alice," + idA + ",\"first\nsecond\"\n" +
		"bob,,no id\n" +
		"carol, " + idB + " \n" +
		"dave," + idC + ",x,y,z\n"
	f := writeFile(t, "ids.csv", csv)
	in, err := readBulkInput(t.Context(), bulkInputOptions{File: f, Column: "contact_id", Check: checkWith(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if got := spooled(t, in, 1000); len(got) != 1 || !slices.Equal(got[0], []string{idA, idB, idC}) {
		t.Fatalf("IDs %v", got)
	}
	if in.Read != 3 || in.Unique != 3 || in.BlankCells != 1 || !in.Streamed {
		t.Fatalf("counts %+v", in)
	}
}

func TestBulkInputCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, csv, column string
		want              []string
	}{
		{"missing column", "name,id\nalice," + idA + "\n", "contact_id",
			[]string{`no column "contact_id" in the header row`, `"name", "id"`, "nothing was submitted"}},
		{"header only names the column in another case", "Contact_ID\n" + idA + "\n", "contact_id",
			[]string{`no column "contact_id"`}},
		{"short row", "name,contact_id\nalice," + idA + "\nbob\n", "contact_id",
			[]string{"ids.csv line 3:", `no "contact_id" field`, "nothing was submitted"}},
		{"bad quoting", "name,contact_id\nalice," + idA + "\nb\"ob," + idB + "\n", "contact_id",
			[]string{"ids.csv:", "line 3", "nothing was submitted"}},
		// Line 5: the quoted field of line 2 spans lines 2 and 3.
		{"invalid ID after a multi-line field", "name,contact_id\n\"a\nb\"," + idA + "\nc," + idB + "\nd," + idA + "*\n", "contact_id",
			[]string{"ids.csv line 5: invalid contact ID; nothing was submitted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, "ids.csv", tc.csv)
			_, err := readBulkInput(t.Context(), bulkInputOptions{File: f, Column: tc.column, Check: checkWith(t)})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A bad line is named by its line in the file, counting blank lines and
// comments, and the error does not repeat what was on it.
func TestBulkInputValidationNamesTheLine(t *testing.T) {
	lines := []string{"# exported 2026-11-27", idA, "", idB, "   ", "not-an-id-" + idD, idC}
	f := writeFile(t, "ids.txt", strings.Join(lines, "\n"))
	_, err := readBulkInput(t.Context(), bulkInputOptions{File: f, Check: checkWith(t)})
	if err == nil || err.Error() != f+" line 6: invalid contact ID; nothing was submitted" {
		t.Fatalf("error %v", err)
	}
	// A CSV read as lines gets a hint.
	f = writeFile(t, "ids.csv", "contact_id,name\n"+idA+",alice\n")
	_, err = readBulkInput(t.Context(), bulkInputOptions{File: f, Check: checkWith(t)})
	if err == nil || !strings.Contains(err.Error(), "line 1: invalid contact ID (a CSV file? name its contact ID column with --column)") {
		t.Fatalf("error %v", err)
	}
	// Arguments are named by position; stdin by its line.
	_, err = readBulkInput(t.Context(), bulkInputOptions{Args: []string{idA, "*"}, Check: checkWith(t)})
	if err == nil || err.Error() != "argument 2: invalid contact ID; nothing was submitted" {
		t.Fatalf("error %v", err)
	}
	_, err = readBulkInput(t.Context(), bulkInputOptions{Args: []string{"-"}, Stdin: strings.NewReader(idA + "\n\n" + idB + "?\n"), Check: checkWith(t)})
	if err == nil || err.Error() != "stdin line 3: invalid contact ID; nothing was submitted" {
		t.Fatalf("error %v", err)
	}
	// The 1,001st ID is in the second chunk checked; its line is still its own.
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "%08x-4a77-4e53-9d5e-1c2d3e4f5a6b\n", i)
	}
	b.WriteString("# comment\nbad\n")
	f = writeFile(t, "long.txt", b.String())
	_, err = readBulkInput(t.Context(), bulkInputOptions{File: f, Check: checkWith(t)})
	if err == nil || err.Error() != f+" line 1002: invalid contact ID; nothing was submitted" {
		t.Fatalf("error %v", err)
	}
}

func TestBulkInputDropsDuplicates(t *testing.T) {
	f := writeFile(t, "ids.txt", idC+"\n"+idA+"\n"+idD+"\n"+idC+"\n")
	in, err := readBulkInput(t.Context(), bulkInputOptions{
		Args:  []string{idA, idB, idA, "-"},
		Stdin: strings.NewReader(idB + "\n" + idC + "\n"),
		File:  f, Check: checkWith(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// First occurrences, in input order: arguments, stdin, then the file.
	got := spooled(t, in, 2)
	want := [][]string{{idA, idB}, {idC, idD}}
	if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	if in.Read != 9 || in.Unique != 4 || in.Duplicates != 5 {
		t.Fatalf("counts %+v", in)
	}
	// Nothing but blank lines and comments is no list at all.
	_, err = readBulkInput(t.Context(), bulkInputOptions{Args: []string{"-"}, Stdin: strings.NewReader("\n# none\n"), Check: checkWith(t)})
	if err == nil || !strings.Contains(err.Error(), "no contact IDs") {
		t.Fatalf("empty input: %v", err)
	}
}

// The second pass reads what the first pass checked, not the file again:
// a file rewritten in between cannot slip an unchecked ID in.
func TestBulkInputSecondPassReadsTheSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := writeFile(t, "ids.txt", idA+"\n"+idB+"\n")
	in, err := readBulkInput(t.Context(), bulkInputOptions{File: f, Check: checkWith(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.WriteFile(f, []byte("*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and it can be read more than once
		if got := spooled(t, in, 1000); len(got) != 1 || !slices.Equal(got[0], []string{idA, idB}) {
			t.Fatalf("second pass read %v", got)
		}
	}
	// Not even a killed run leaves the spool in the temporary directory.
	if des, err := os.ReadDir(tmp); err != nil || len(des) != 0 {
		t.Errorf("temporary directory holds %v (%v)", des, err)
	}
}
