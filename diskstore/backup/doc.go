// Package backup writes backups of cairn's embedded engine (package
// diskstore) while the store serves writes, keeps them as generations of a
// backup set, and restores them.
//
// A backup set is a directory of generations, one per backup, oldest
// first:
//
//	backups/
//	  000001-20250301T020000Z/   a full backup
//	  000002-20250302T020000Z/   the next one: copies only what changed
//	  .lock
//
// Every generation is complete on its own, a store's directory (the
// index's checkpoint and the log up to the head, see
// [diskstore.DB.BeginBackup]) with its manifest, BACKUP.json, written
// last: restore any of them, delete any of them. A generation shares
// with the one before, by hard links, every sealed file (the index's
// tables, the segments the log had gone on from) that has not changed, and
// copies from it the part of the log's last segment it holds (the log's
// bytes are written once), so a backup copies from the store only the
// tables written since the last one and what the log gained. On the store's own filesystem a backup hard-links the store's
// sealed files too ([Options.Copy] copies them instead), so that it
// takes neither time nor space at first.
//
// A set holds the backups of one store: the store's identity (a file in
// its log's directory) is in every manifest, and a backup of another store
// into the set is refused. A restored store gets an identity of its own:
// back it up into a new set.
//
// A backup writes its generation under a name ending in ".partial" and
// renames it once complete and synced; the next backup removes what an
// interrupted one left. A generation that is not yet complete is never
// used.
//
// The same generation can be written from a store opened in this process
// ([Set.Write]) or from a running server, which streams the files over
// cairn.v1's Backup call ([Send] on the server, [Set.Receive] on the
// client, the previous manifest telling the server what to leave out).
//
// [Restore] copies a generation into an empty directory (hard links for
// sealed files where it can, copies for the rest and for the segment the
// restored store will append to), gives it an identity of its own, and
// opens it once, which replays the frames its index's checkpoint lacks.
//
// # Caveats
//
//   - Compaction waits while a backup copies the log, and never punches
//     holes in a segment a backup links: its space comes back when the
//     segment is removed, or at the first compaction after the backups
//     that link it are deleted.
//   - A generation is a store's directory but not one to open for writing,
//     which would change it: the engine refuses to, restore it instead.
//     It can be checked in place (cairn check).
//   - Hard links share the bytes: a backup on the store's filesystem does
//     not survive the loss of that disk. Back up to another filesystem (or
//     copy a generation elsewhere) for that.
package backup
