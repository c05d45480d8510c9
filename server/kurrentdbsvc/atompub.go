package kurrentdbsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// KurrentDB's AtomPub append of events over HTTP (POST /streams/{stream}),
// which KurrentDB 25 serves only when --enable-atom-pub-over-http is set:
// here only with [Options.AtomPub]. The body is one event's data, whose
// type and id travel in headers (ES-EventType, ES-EventId, or their
// Kurrent- names), or an array of events in KurrentDB's own media type
// (application/vnd.eventstore.events+json, or vnd.kurrent.events+json):
// [{"eventId", "eventType", "data", "metadata"}]. ES-ExpectedVersion sets
// the expectation (-2 any, the default; -1 no stream; -4 exists; n).
//
// Answers as KurrentDB's: 201 Created with the Location of the first event
// written; 400 "Wrong expected EventNumber" with ES-CurrentVersion on a
// conflict; 410 Gone for a tombstoned stream; 400 for a bad request.
// Unlike KurrentDB, a single event without an id gets one rather than a
// redirect to an /incoming/{id} address.

// atomEvent is one event of the array form.
type atomEvent struct {
	EventID   string          `json:"eventId"`
	EventType string          `json:"eventType"`
	Data      json.RawMessage `json:"data"`
	Metadata  json.RawMessage `json:"metadata"`
}

// atomHeader returns a header by its ES- or Kurrent- name.
func atomHeader(r *http.Request, name string) string {
	if v := r.Header.Get("ES-" + name); v != "" {
		return v
	}
	return r.Header.Get("Kurrent-" + name)
}

func (s *Services) atomAppend(w http.ResponseWriter, r *http.Request) {
	stream := r.PathValue("stream")
	exp := cairn.Any
	if v := atomHeader(r, "ExpectedVersion"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			exp, err = cairn.ParseExpectedVersion(n)
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("ES-ExpectedVersion %q: use -2 (any), -1 (no stream), -4 (stream exists) or a version", v), http.StatusBadRequest)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxAppendBytes)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("the body is larger than the largest append, %d bytes", s.opts.MaxAppendBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	events, err := atomEvents(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res, err := s.appendEvents(r.Context(), stream, exp, events)
	var wev *cairn.WrongExpectedVersionError
	switch {
	case errors.As(err, &wev):
		w.Header().Set("ES-CurrentVersion", strconv.FormatInt(wev.Actual, 10))
		http.Error(w, "Wrong expected EventNumber", http.StatusBadRequest)
		return
	case errors.Is(err, cairn.ErrStreamDeleted):
		http.Error(w, "Stream deleted", http.StatusGone)
		return
	case errors.Is(err, cairn.ErrInvalidArgument):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	first := res.Version - int64(len(events)) + 1
	w.Header().Set("Location", fmt.Sprintf("%s/streams/%s/%d", s.requestBase(r), stream, first))
	w.Header().Set("ES-Position", strconv.FormatUint(res.Position, 10))
	w.WriteHeader(http.StatusCreated)
}

// requestBase is the scheme and host a request was made to: the host
// serves TLS on the whole port when it is secure.
func (s *Services) requestBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || s.opts.Secure {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// atomEvents reads the events of an AtomPub append.
func atomEvents(r *http.Request, body []byte) ([]cairn.EventData, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/vnd.eventstore.events+json", "application/vnd.kurrent.events+json":
		var in []atomEvent
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, fmt.Errorf("the body is not an array of events: %v", err)
		}
		if len(in) == 0 {
			return nil, errors.New("the body holds no event")
		}
		out := make([]cairn.EventData, len(in))
		for i, e := range in {
			id, err := uuid.Parse(e.EventID)
			if err != nil {
				return nil, fmt.Errorf("events[%d].eventId %q is not a UUID", i, e.EventID)
			}
			if e.EventType == "" {
				return nil, fmt.Errorf("events[%d].eventType is missing", i)
			}
			out[i] = cairn.EventData{ID: id, Type: e.EventType, ContentType: cairn.ContentJSON, Data: e.Data, Metadata: e.Metadata}
		}
		return out, nil
	case "application/json", "application/octet-stream", "text/plain":
		typ := atomHeader(r, "EventType")
		if typ == "" {
			return nil, errors.New("the ES-EventType header is missing")
		}
		e := cairn.EventData{Type: typ, Data: body, ContentType: cairn.ContentBinary}
		if mt == "application/json" {
			if !json.Valid(body) {
				return nil, errors.New("the body is not JSON")
			}
			e.ContentType = cairn.ContentJSON
		}
		if v := atomHeader(r, "EventId"); v != "" {
			id, err := uuid.Parse(v)
			if err != nil {
				return nil, fmt.Errorf("ES-EventId %q is not a UUID", v)
			}
			e.ID = id
		}
		return []cairn.EventData{e}, nil
	}
	return nil, fmt.Errorf("content type %q: use application/json or application/vnd.eventstore.events+json", mt)
}
