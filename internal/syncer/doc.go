// Package syncer is the sync loop: commit local changes, announce the
// head over gossip, fetch the heads other devices announced (over mutual
// TLS, from the announcer, else from any device announcing the same
// commit), converge on them deterministically, update the working tree,
// announce the result. mesh sync runs rounds until this device holds
// every head it heard of; mesh daemon runs them whenever gossip or the
// folder changes.
//
// A session keeps this device's addresses across restarts and remembers
// the other devices' (addrs.go): what it binds (.mesh/addrs.json), what
// it advertises (exactly the bound port; an interface address for a
// wildcard bind), and every device heard of (.mesh/peers.json), each
// dialed again on its own backoff while it does not answer.
package syncer
