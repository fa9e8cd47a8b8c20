// Package cloud makes an S3-compatible bucket a member of a mesh that
// holds only ciphertext: devices push to it and fetch from it as from
// another device, so two devices that are never online together still
// meet there.
//
// # Layout
//
// Under the URL's prefix (s3://BUCKET/PREFIX) the bucket holds:
//
//	mesh              the format, sealed: a wrong secret fails to open it
//	packs/NAME        objects, each sealed on its own (ranged GETs read any one)
//	indexes/NAME      the pack's index, sealed: what is at which offset
//	devices/DEV/REF   one device's head of one branch, signed and sealed
//
// Every object is written once and never modified. A pack counts only
// once its index exists, and a push writes the index after the pack and
// the ref after both, so a push cut short leaves an object nothing names
// (gc removes it after the grace period). A push is packs of at most
// MaxPack bytes written leaves first, so each finished pack holds the
// closure of what it names and a push run again resumes where it was. Each device writes only its own
// refs, so no locks or compare-and-swap are needed; readers take every
// device's head and merge them as they do gossip heads.
//
// # Encryption
//
// The keys come from the mesh secret by HKDF-SHA256: one seals with
// XChaCha20-Poly1305 (random 24-byte nonces), one keys the names with
// HMAC-SHA256. Pack names are random; device and ref names are keyed
// hashes. Each sealed object's associated data binds it to its place: an
// object under its ID and type, an index under its pack's name, a ref
// under its key. A ref also carries its device's Ed25519 signature and a
// sequence number that grows with every push; a reader remembers the
// highest it has seen, so a ref moved back is refused.
//
// The bucket's operator sees how many objects there are, their sizes and
// when they were written, how many devices push and how often, and can
// delete or withhold objects (a fetch then fails, naming what is
// missing). It cannot read names or content, tell which chunks two files
// share, change an object without the change being found, move a ref
// back or give one device's head to another.
package cloud
