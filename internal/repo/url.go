package repo

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrUnknownScheme is returned for a URL whose scheme mesh does not
// speak: it is never taken as a relative path (s3://b/p would otherwise
// name the folder ./s3:/b/p).
var ErrUnknownScheme = errors.New("unknown URL scheme")

var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// splitURL tells what a remote URL names: the address of a device
// (tls://HOST:PORT, network true) or the path of a repository (a path, or
// file://PATH). Any other scheme is ErrUnknownScheme.
func splitURL(url string) (target string, network bool, err error) {
	m := schemeRE.FindStringSubmatch(url)
	if m == nil {
		return url, false, nil
	}
	rest := url[len(m[0]):]
	switch strings.ToLower(m[1]) {
	case "tls":
		return rest, true, nil
	case "file":
		if rest == "" {
			return "", false, fmt.Errorf("%s: file:// needs a path", url)
		}
		return rest, false, nil
	}
	return "", false, fmt.Errorf("%s: %w %q: mesh reaches tls://HOST:PORT (a device running mesh serve or mesh daemon) and the path of a repository (or file://PATH)", url, ErrUnknownScheme, m[1])
}
