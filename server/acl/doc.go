// Package acl decides what a user may do to a stream, by the access
// control lists KurrentDB keeps and enforces: the $acl of a stream's
// metadata and the default ACLs of the $settings stream. The protocols of
// the server (the KurrentDB protocol and cairn.v1) ask a [Checker] before
// every read, write, delete, metadata call and subscription.
//
// # The rules
//
// A stream's ACL grants each operation — $r (read, subscribe), $w
// (append), $d (delete, tombstone), $mr and $mw (read and write its
// metadata stream, "$$" and its name) — to roles: user names, group
// names, or $all for every user. A role is a string or a list of strings;
// an empty list grants nobody.
//
//	{"$acl": {"$r": ["ada", "accounting"], "$w": "ada", "$d": [], "$mw": "$admins"}}
//
// For an operation the stream's ACL does not set, the default applies:
// from the last event of $settings,
//
//	{"$userStreamAcl": {"$r": "$all", "$w": "$all"}, "$systemStreamAcl": {"$r": "$admins"}}
//
// and for what that does not set, KurrentDB's own defaults ([Defaults]):
// every user may do anything to a user stream, only administrators to a
// system stream (one whose name starts with '$', $all and $settings among
// them). Administrators (the $admins group, and the user admin) may do
// anything, whatever the ACLs say; but no one writes or deletes $all.
// Reading $all — a read, a subscription, filtered or not, a persistent
// subscription on $all — needs the Read right of $all's ACL, set in the
// metadata stream "$$$all": administrators only, by default.
//
// An ACL that cannot be read (a $acl or $settings that is not what it
// should be) grants nothing, but to administrators: the servers refuse to
// write one, and a store written otherwise fails closed.
package acl
