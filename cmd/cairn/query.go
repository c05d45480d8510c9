package main

import (
	"encoding/json"
	"fmt"

	"github.com/cairndb/cairn"
)

// queryFlags are the flags that make a query (dynamic consistency
// boundaries): --type and --tag build one item, --query any query.
type queryFlags struct {
	types, tags []string
	json        string
}

// set reports whether any flag of the query was given.
func (f *queryFlags) set() bool { return len(f.types) > 0 || len(f.tags) > 0 || f.json != "" }

// query returns the query the flags describe.
func (f *queryFlags) query() (cairn.Query, error) {
	if f.json == "" {
		return cairn.Query{Items: []cairn.QueryItem{{Types: f.types, Tags: f.tags}}}, nil
	}
	if len(f.types) > 0 || len(f.tags) > 0 {
		return cairn.Query{}, fmt.Errorf("--query describes the whole query: give --type and --tag inside it, not beside it")
	}
	var q struct {
		Items []struct {
			Types []string `json:"types"`
			Tags  []string `json:"tags"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(f.json), &q); err != nil {
		return cairn.Query{}, fmt.Errorf(`--query is not a query: %v (want {"items":[{"types":[…],"tags":[…]}]})`, err)
	}
	var out cairn.Query
	for _, it := range q.Items {
		out.Items = append(out.Items, cairn.QueryItem{Types: it.Types, Tags: it.Tags})
	}
	return out, nil
}
