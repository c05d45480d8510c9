// Package users is the user database of a cairn server: users, their
// groups and their passwords, kept in the Store itself as KurrentDB keeps
// them, so that they survive restarts, travel with backups, and are shared
// by every server on the same Store.
//
// # In the store
//
// Each user has a stream, "$user-" and its login name, whose last event
// holds the whole record: $UserCreated first, $UserUpdated for each change,
// with the data {"loginName", "fullName", "salt", "hash", "disabled",
// "groups"}, KurrentDB's fields. Its metadata gives it KurrentDB's ACL:
// only administrators write, delete or change it, and read it (the default
// of system streams). $users gets a $User event, whose data is the login
// name, for each user created. Each change of a user's credentials —
// password, groups, disabled, deleted — writes a $PasswordChanged event
// ({"loginName"}) to $users-password-notifications, kept an hour ($maxAge),
// from which servers sharing the Store drop what they cached
// ([DB.Watch]). A change writes its events in one atomic batch, with the
// version of the record it read: of two concurrent changes of a user, the
// second reads again and retries. Deleting a user deletes its stream (a
// soft delete: the name can be created again).
//
// [DB.Bootstrap] creates the built-in users admin ($admins) and ops ($ops)
// once, when the store has never held them, as a new KurrentDB node does.
//
// # Passwords
//
// A password is hashed with Argon2id (RFC 9106; golang.org/x/crypto/argon2)
// and a random 16-byte salt, and stored as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$salt$hash", which records its parameters
// ([DefaultHashParams]: OWASP's first recommended configuration). A hash
// costs about 50 ms of a core and 19 MiB; at most
// [Options.HashConcurrency] run at once. A verified password is then
// trusted for [Options.CacheTTL] (30 s) without hashing again: the cache
// holds a keyed hash of the name and password, never the password, and a
// change of the user through this DB drops it before the change returns.
// Requests that bring the same credentials at once share one verification
// (connections verified together expire together), unless the user
// changed in between. An unknown user costs the same hash as a known one. A server connection
// may also remember the credentials it last authenticated with ([Memo]),
// which it holds anyway, so that its next requests skip the keyed hash;
// it recalls them only while the cache would trust them.
//
// # Differences from KurrentDB
//
// KurrentDB hashes with PBKDF2 (HMAC-SHA1); cairn's hashes are Argon2id,
// so neither verifies the other's (a record with a hash cairn cannot read
// never authenticates). Login names may not start with '$' (the system's
// roles do) nor hold ':' (basic authentication cannot carry it).
package users
