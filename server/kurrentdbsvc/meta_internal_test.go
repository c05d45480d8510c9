package kurrentdbsvc

import (
	"testing"
	"time"
)

func TestMetaVisibility(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := parseMeta([]byte(`{"$maxCount":3,"$maxAge":60,"$tb":4,"owner":"x"}`))
	if m.maxCount != 3 || m.maxAge != time.Minute || m.before != 4 {
		t.Fatalf("parsed %+v", m)
	}
	lowest, oldest := m.visibility(9, now)
	if lowest != 7 || !oldest.Equal(now.Add(-time.Minute)) {
		t.Errorf("last 9: lowest %d oldest %v; want 7 and a minute ago", lowest, oldest)
	}
	if lowest, _ := m.visibility(5, now); lowest != 4 {
		t.Errorf("last 5: lowest %d, want $tb 4", lowest)
	}
	for _, bad := range []string{`{"$maxCount":-1}`, `{"$maxCount":"3"}`, `{"$maxCount":1.5}`, `not json`} {
		if m := parseMeta([]byte(bad)); m != (streamMeta{}) {
			t.Errorf("parseMeta(%s) = %+v, want nothing enforced", bad, m)
		}
	}
}
