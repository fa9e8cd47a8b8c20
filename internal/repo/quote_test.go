package repo

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain.txt":      "plain.txt",
		"with space.txt": "with space.txt",
		"über/naïve.txt": "über/naïve.txt",
		"two\nlines":     `"two\nlines"`,
		"tab\there":      `"tab\there"`,
		`say "hi"`:       `"say \"hi\""`,
		`back\slash`:     `"back\\slash"`,
		"bad\xffbyte":    `"bad\377byte"`,
		"bell\a":         `"bell\007"`,
		"\u200bzero":     `"\342\200\213zero"`,
	} {
		if got := QuotePath(in); got != want {
			t.Errorf("QuotePath(%q) = %s, want %s", in, got, want)
		}
	}
}
