package nats

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	o, err := Parse("nats://u:p@h1:4222,h2:4223?dir=./n1&stream=ORDERS&replicas=1&node=a")
	if err != nil {
		t.Fatal(err)
	}
	if o.URL != "nats://u:p@h1:4222,nats://u:p@h2:4223" || o.Dir != "./n1" || o.Stream != "ORDERS" || o.Replicas != 1 || o.NodeID != "a" {
		t.Fatalf("%+v", o)
	}
	for _, bad := range []string{"nats://", "nats://h1:4222?replicas=9", "nats://h1:4222?colour=red", "nats://h 1:4222"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	if _, err := Parse("nats://u:secret@h1:4222?replicas=0"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v shows the password or is missing", err)
	}
}
