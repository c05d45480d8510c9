package acl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cairndb/cairn/server/auth"
)

// Operation is what a request does to a stream.
type Operation int

// The operations an ACL grants, each under its key in a stream's $acl.
const (
	Read          Operation = iota // $r: read the stream, subscribe to it
	Write                          // $w: append to it
	Delete                         // $d: delete or tombstone it
	MetadataRead                   // $mr: read its metadata stream
	MetadataWrite                  // $mw: write its metadata stream
)

var opNames = [...]string{"read", "write", "delete", "read the metadata of", "write the metadata of"}

func (o Operation) String() string {
	if o < 0 || int(o) >= len(opNames) {
		return fmt.Sprintf("operation(%d)", int(o))
	}
	return opNames[o]
}

// The keys of an ACL in JSON, as KurrentDB writes them.
const (
	keyRead          = "$r"
	keyWrite         = "$w"
	keyDelete        = "$d"
	keyMetadataRead  = "$mr"
	keyMetadataWrite = "$mw"
)

// Stream names with a meaning of their own.
const (
	// AllStream is the global log. Reading it needs the Read right of its
	// ACL (a system stream's: administrators by default); nobody may
	// write or delete it.
	AllStream = "$all"
	// SettingsStream holds the default ACLs: its last event, a JSON
	// object with $userStreamAcl and $systemStreamAcl (see [Settings]).
	SettingsStream = "$settings"
	// metaPrefix starts a metadata stream's name: "$$orders" holds the
	// metadata of "orders", and its ACL is that of "orders".
	metaPrefix = "$$"
	// keyACL is the property of stream metadata that holds its ACL.
	keyACL = "$acl"
)

// ACL is a stream's access control list, the $acl of its metadata: for
// each operation the roles that may perform it (user names, group names,
// or [auth.RoleAll] for every user). A nil list is not set, and the
// default of [Settings] applies; an empty list grants nobody (but
// administrators, whom no ACL binds).
//
// In stream metadata, $acl may also be the string "$userStreamAcl" or
// "$systemStreamAcl" (the official clients' UserStreamAcl and
// SystemStreamAcl): the stream then takes the defaults of that kind of
// stream, whatever its name. Default records which.
type ACL struct {
	Read, Write, Delete, MetadataRead, MetadataWrite []string
	// Default is DefaultUserStreams or DefaultSystemStreams when the ACL
	// stands for those defaults, and empty otherwise.
	Default string
}

// The strings that stand for the default ACLs in stream metadata.
const (
	DefaultUserStreams   = "$userStreamAcl"
	DefaultSystemStreams = "$systemStreamAcl"
)

// Roles returns the roles granted op, nil when the ACL does not say.
func (a ACL) Roles(op Operation) []string {
	switch op {
	case Read:
		return a.Read
	case Write:
		return a.Write
	case Delete:
		return a.Delete
	case MetadataRead:
		return a.MetadataRead
	case MetadataWrite:
		return a.MetadataWrite
	}
	return nil
}

// MarshalJSON writes the ACL as KurrentDB does: each list that is set under
// its key, a single role as a string; an ACL that stands for the defaults
// as the string that names them.
func (a ACL) MarshalJSON() ([]byte, error) {
	if a.Default != "" {
		return json.Marshal(a.Default)
	}
	out := map[string]any{}
	for _, f := range a.fields() {
		switch roles := *f.roles; {
		case roles == nil:
		case len(roles) == 1:
			out[f.key] = roles[0]
		default:
			out[f.key] = roles
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads an ACL as KurrentDB writes it: a JSON object whose
// keys $r, $w, $d, $mr and $mw each hold a role, a list of roles, or null;
// or one of the strings that stand for the defaults. Other keys are
// ignored; a value of another type is an error.
func (a *ACL) UnmarshalJSON(data []byte) error {
	var name string
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '"' && json.Unmarshal(t, &name) == nil {
		if name != DefaultUserStreams && name != DefaultSystemStreams {
			return fmt.Errorf("%q is not an ACL: give an object of roles, %q or %q", name, DefaultUserStreams, DefaultSystemStreams)
		}
		*a = ACL{Default: name}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("an ACL is a JSON object: %w", err)
	}
	if obj == nil {
		*a = ACL{}
		return nil
	}
	var out ACL
	for _, f := range out.fields() {
		raw, ok := obj[f.key]
		if !ok {
			continue
		}
		roles, err := parseRoles(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		*f.roles = roles
	}
	*a = out
	return nil
}

type aclField struct {
	key   string
	roles *[]string
}

func (a *ACL) fields() []aclField {
	return []aclField{
		{keyRead, &a.Read}, {keyWrite, &a.Write}, {keyDelete, &a.Delete},
		{keyMetadataRead, &a.MetadataRead}, {keyMetadataWrite, &a.MetadataWrite},
	}
}

// parseRoles reads a role ("$all"), a list of roles or null (not set).
func parseRoles(raw json.RawMessage) ([]string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		roles := make([]string, 0, len(v))
		for i, r := range v {
			s, ok := r.(string)
			if !ok {
				return nil, fmt.Errorf("role %d is %s, not a string", i, jsonType(r))
			}
			roles = append(roles, s)
		}
		return roles, nil
	}
	return nil, fmt.Errorf("is %s; give a role, a list of roles or null", jsonType(v))
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	}
	return "an object"
}

// FromMetadata returns the ACL of stream metadata: its $acl property. It
// returns the zero ACL when metadata is empty or has no $acl, and an error
// when metadata is not a JSON object or its $acl is not an ACL.
func FromMetadata(metadata []byte) (ACL, error) {
	if len(metadata) == 0 {
		return ACL{}, nil
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(metadata, &props); err != nil {
		return ACL{}, fmt.Errorf("stream metadata is not a JSON object: %w", err)
	}
	raw, ok := props[keyACL]
	if !ok {
		return ACL{}, nil
	}
	var a ACL
	if err := json.Unmarshal(raw, &a); err != nil {
		return ACL{}, fmt.Errorf("%s: %w", keyACL, err)
	}
	return a, nil
}

// Settings are the default ACLs of user streams and of system streams
// (those whose names start with '$'), the last event of the $settings
// stream. A role a stream's own ACL does not set is taken from here, and
// one these do not set from [Defaults].
type Settings struct {
	UserStreams   ACL
	SystemStreams ACL
}

// MarshalJSON writes the settings as KurrentDB does.
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]ACL{keyUserStreamACL: s.UserStreams, keySystemStreamACL: s.SystemStreams})
}

// The keys of the default ACLs in a $settings event.
const (
	keyUserStreamACL   = "$userStreamAcl"
	keySystemStreamACL = "$systemStreamAcl"
)

// ParseSettings reads the data of a $settings event: a JSON object whose
// $userStreamAcl and $systemStreamAcl, each optional, are ACLs. Empty data
// sets nothing.
func ParseSettings(data []byte) (Settings, error) {
	var s Settings
	if len(data) == 0 {
		return s, nil
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(data, &props); err != nil {
		return Settings{}, fmt.Errorf("%s: settings are a JSON object: %w", SettingsStream, err)
	}
	for key, a := range map[string]*ACL{keyUserStreamACL: &s.UserStreams, keySystemStreamACL: &s.SystemStreams} {
		raw, ok := props[key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, a); err != nil {
			return Settings{}, fmt.Errorf("%s: %s: %w", SettingsStream, key, err)
		}
	}
	return s, nil
}

// Defaults returns KurrentDB's built-in default ACLs: every user may do
// anything to a user stream; only administrators may touch a system
// stream.
func Defaults() Settings {
	all := []string{auth.RoleAll}
	admins := []string{auth.RoleAdmins}
	return Settings{
		UserStreams:   ACL{Read: all, Write: all, Delete: all, MetadataRead: all, MetadataWrite: all},
		SystemStreams: ACL{Read: admins, Write: admins, Delete: admins, MetadataRead: admins, MetadataWrite: admins},
	}
}

// For returns the default ACL of stream: SystemStreams for a system
// stream, UserStreams otherwise.
func (s Settings) For(stream string) ACL {
	if IsSystemStream(stream) {
		return s.SystemStreams
	}
	return s.UserStreams
}

// IsSystemStream reports whether stream is a system stream: its name
// starts with '$'. $all is one.
func IsSystemStream(stream string) bool { return strings.HasPrefix(stream, "$") }

// Target returns the stream whose ACL governs op on stream, and the
// operation to look up there: for a metadata stream "$$x", the metadata
// operation on x. Deleting a metadata stream is not an operation.
func Target(op Operation, stream string) (Operation, string, error) {
	target, ok := strings.CutPrefix(stream, metaPrefix)
	if !ok {
		return op, stream, nil
	}
	switch op {
	case Read, MetadataRead:
		return MetadataRead, target, nil
	case Write, MetadataWrite:
		return MetadataWrite, target, nil
	}
	return op, target, fmt.Errorf("%q is a metadata stream: it cannot be deleted", stream)
}

// Allowed reports whether p may perform op on stream, a stream that is not
// a metadata stream (see [Target]), whose own ACL is streamACL, under the
// default ACLs settings. Administrators may do anything but write or
// delete $all, which nobody may. Otherwise the roles granted op are the
// stream ACL's, else those of settings for its kind of stream, else
// KurrentDB's [Defaults]; p needs one of them.
func Allowed(p auth.Principal, op Operation, stream string, streamACL ACL, settings Settings) bool {
	if stream == AllStream && (op == Write || op == Delete) {
		return false
	}
	if p.IsAdmin() {
		return true
	}
	kind := stream // whose defaults apply
	switch streamACL.Default {
	case DefaultUserStreams:
		kind = "user"
	case DefaultSystemStreams:
		kind = "$system"
	}
	roles := streamACL.Roles(op)
	if roles == nil {
		roles = settings.For(kind).Roles(op)
	}
	if roles == nil {
		roles = Defaults().For(kind).Roles(op)
	}
	for _, r := range roles {
		if p.InRole(r) {
			return true
		}
	}
	return false
}

// ErrAccessDenied is the error a request gets when the ACLs do not let
// its user do what it asks.
var ErrAccessDenied = errors.New("access denied")

// DeniedError says who was refused what. It unwraps to ErrAccessDenied.
type DeniedError struct {
	User   string
	Op     Operation
	Stream string
	// Reason, when set, says why beyond the ACL's roles: an ACL that
	// cannot be read grants nothing.
	Reason string
}

func (e *DeniedError) Error() string {
	msg := fmt.Sprintf("access denied: user %q may not %s stream %q", e.User, e.Op, e.Stream)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

func (e *DeniedError) Unwrap() error { return ErrAccessDenied }

// CheckData returns an error when data cannot be the data of an event of
// stream because the ACLs would read it: an event of a metadata stream
// ("$$x") is a JSON object whose $acl, when it has one, is an ACL
// ([FromMetadata]); an event of [SettingsStream] holds default ACLs
// ([ParseSettings]). Any data suits any other stream. The servers check
// every write with it, whatever the protocol, so that the store holds no
// ACL that grants nothing because it cannot be read.
func CheckData(stream string, data []byte) error {
	switch {
	case stream == SettingsStream:
		_, err := ParseSettings(data)
		return err
	case strings.HasPrefix(stream, metaPrefix):
		var props map[string]json.RawMessage
		if err := json.Unmarshal(data, &props); err != nil || props == nil {
			return fmt.Errorf("stream metadata must be a JSON object, not %s", jsonKind(data))
		}
		_, err := FromMetadata(data)
		return err
	}
	return nil
}

// jsonKind says what data is, for an error message.
func jsonKind(data []byte) string {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return "text that is not JSON"
	}
	return jsonType(v)
}
