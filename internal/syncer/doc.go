// Package syncer is the sync loop: commit local changes, announce the
// head over gossip, fetch the heads other devices announced (over mutual
// TLS, from the announcer, else from any device announcing the same
// commit), converge on them deterministically, update the working tree,
// announce the result. mesh sync runs rounds until this device holds
// every head it heard of; mesh daemon runs them whenever gossip or the
// folder changes.
package syncer
