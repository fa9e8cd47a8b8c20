package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mesh-sync/mesh/object"
)

// UserConfig names the person whose commits these are.
type UserConfig struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// ErrConfigKey is the kind of error for a key mesh config does not know.
var ErrConfigKey = errors.New("unknown config key")

// configKeys are the settings mesh config reads and writes: what each
// means, how it is checked, and where it lives in Config.
var configKeys = map[string]struct {
	about string
	check func(string) error
	field func(*Config) *string
}{
	"name": {
		"the name this device goes by in conflict copies and messages (default: the host name)",
		func(v string) error {
			if !object.ValidDeviceName(v) {
				return fmt.Errorf("%q cannot name a device: use up to %d letters, digits, '.', '_' and '-', not starting with '.' or '-'", v, object.MaxDeviceNameLen)
			}
			return nil
		},
		func(c *Config) *string { return &c.Name },
	},
	"user.name": {
		"your name, recorded as the author of this device's commits",
		checkAuthorPart,
		func(c *Config) *string { return &c.User.Name },
	},
	"user.email": {
		"your e-mail address, recorded with user.name",
		checkAuthorPart,
		func(c *Config) *string { return &c.User.Email },
	},
}

func checkAuthorPart(v string) error {
	if !utf8.ValidString(v) || strings.ContainsAny(v, "<>\n\x00") || strings.TrimSpace(v) != v {
		return fmt.Errorf("%q: no '<', '>', newlines or surrounding spaces", v)
	}
	return nil
}

// ConfigKeys lists the keys mesh config knows, with what each means.
func ConfigKeys() map[string]string {
	out := map[string]string{}
	for k, v := range configKeys {
		out[k] = v.about
	}
	return out
}

// ConfigValues is every setting mesh config knows, set or not, by key.
func (r *Repo) ConfigValues() map[string]string {
	out := map[string]string{}
	for k, v := range configKeys {
		out[k] = *v.field(&r.Config)
	}
	return out
}

// SetConfig sets key to value (an empty value unsets it), under the lock.
func (r *Repo) SetConfig(ctx context.Context, key, value string) error {
	k, ok := configKeys[key]
	if !ok {
		known := make([]string, 0, len(configKeys))
		for n := range configKeys {
			known = append(known, n)
		}
		sort.Strings(known)
		return fmt.Errorf("%q: %w; mesh config knows %s", key, ErrConfigKey, strings.Join(known, ", "))
	}
	if value != "" {
		if err := k.check(value); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return r.editConfig(ctx, func(c *Config) error {
		*k.field(c) = value
		return nil
	})
}

// DefaultDeviceName is what a new device is called: this machine's host
// name up to its first dot, made fit for a file name ("" when there is
// nothing usable).
func DefaultDeviceName() string {
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	host, _, _ = strings.Cut(host, ".")
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > object.MaxDeviceNameLen {
		name = name[:object.MaxDeviceNameLen]
	}
	if !object.ValidDeviceName(name) {
		return ""
	}
	return name
}

// deviceName is the name this device's commits carry: the configured one
// when it is valid.
func (r *Repo) deviceName() string {
	if object.ValidDeviceName(r.Config.Name) {
		return r.Config.Name
	}
	return ""
}

// author is who this device's commits are by: $MESH_AUTHOR, else
// user.name and user.email, else the older author setting, else
// $USER@host.
func (r *Repo) author() string {
	if a := os.Getenv("MESH_AUTHOR"); a != "" {
		return a
	}
	switch u := r.Config.User; {
	case u.Name != "" && u.Email != "":
		return u.Name + " <" + u.Email + ">"
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return "<" + u.Email + ">"
	}
	if r.Config.Author != "" {
		return r.Config.Author
	}
	// $USER rather than os/user: the latter pulls in cgo and a dynamic
	// loader, which every command would pay for at start-up.
	name := os.Getenv("USER")
	if name == "" {
		name = os.Getenv("LOGNAME")
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
