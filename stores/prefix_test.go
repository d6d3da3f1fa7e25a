package stores

import "testing"

func TestHasPrefixFold(t *testing.T) {
	for _, tc := range []struct {
		s, prefix string
		want      bool
	}{
		{"Dale.Smith", "dale", true},
		{"dale.smith", "DALE.S", true},
		{"dale", "dale.smith", false},
		{"Zoë", "zoë", true},
		{"Zoë", "ZOË", false}, // only ASCII letters fold
		{"a%b", "a%", true},
		{"ab", "a%", false},
		{"x", "", true},
		{"[", "{", false}, // 0x5B and 0x7B differ by 0x20 but are not letters
	} {
		if got := HasPrefixFold(tc.s, tc.prefix); got != tc.want {
			t.Errorf("HasPrefixFold(%q, %q) = %v, want %v", tc.s, tc.prefix, got, tc.want)
		}
	}
}

// PrefixRange must select exactly the strings HasPrefixFold accepts, once
// lowered as the stores lower them.
func TestPrefixRange(t *testing.T) {
	values := []string{"", "a", "ab", "abc", "abd", "ab\u00e9", "ac", "aB", "AB", "b", "ab\x7f", "zo\u00eb", "zo\u00ebx", "zp", "\u00e9", "\u00e9a"}
	for _, prefix := range []string{"a", "AB", "ab", "zo\u00eb", "\u00e9", "~", "ab\x7f"} {
		lo, hi := PrefixRange(prefix)
		for _, v := range values {
			lv := []byte(v)
			for i := range lv {
				lv[i] = asciiLower(lv[i])
			}
			in := string(lv) >= lo && string(lv) < hi
			if want := HasPrefixFold(v, prefix); in != want {
				t.Errorf("PrefixRange(%q) = [%q, %q): holds %q = %v, want %v", prefix, lo, hi, v, in, want)
			}
		}
	}
}
