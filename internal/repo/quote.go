package repo

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// QuotePath prints a path the way git does with core.quotePath=false: as it
// is when every character is printable and neither '"' nor '\', else
// between double quotes with C escapes (\n, \t, \", \\, and \ooo for
// each byte that is a control character or not UTF-8), so a name with a
// newline stays one line and a name that is not UTF-8 shows its bytes.
// Text output names paths through it. JSON output has each name as a
// string and, when the name is not UTF-8 (which a JSON string cannot
// carry), its exact bytes too, base64 in a field beside it (see RawName).
func QuotePath(p string) string {
	if !needsQuote(p) {
		return p
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			octal(&b, p[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case !unicode.IsPrint(r) && r != ' ':
			for j := 0; j < n; j++ {
				octal(&b, p[i+j])
			}
		default:
			b.WriteString(p[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

func needsQuote(p string) bool {
	if !utf8.ValidString(p) {
		return true
	}
	for _, r := range p {
		if r == '"' || r == '\\' || (!unicode.IsPrint(r) && r != ' ') {
			return true
		}
	}
	return false
}

func octal(b *strings.Builder, c byte) {
	b.WriteByte('\\')
	b.WriteByte('0' + c>>6)
	b.WriteByte('0' + c>>3&7)
	b.WriteByte('0' + c&7)
}

// RawName is a name's exact bytes when it is not valid UTF-8 (JSON shows
// it base64-encoded as pathBytes, so a script gets the name back exactly:
// mesh cat "HEAD:$(echo BYTES | base64 -d)"), else nil (and the field is
// left out).
func RawName(p string) []byte {
	if utf8.ValidString(p) {
		return nil
	}
	return []byte(p)
}
