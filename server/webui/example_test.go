package webui_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/server/webui"
)

// A UI over a store and its users, as the server mounts it: a browser logs
// in with the form, then reads a stream with its session.
func Example() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	db := users.New(store, users.Options{})
	if err := db.Bootstrap(ctx, users.Builtin{AdminPassword: "s3cret", OpsPassword: "0ps"}); err != nil {
		panic(err)
	}
	if _, err := store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`)}); err != nil {
		panic(err)
	}
	ui := webui.New(webui.Host{Store: store, Users: db, Access: acl.NewChecker(store)}, webui.Options{})
	srv := httptest.NewServer(ui) // the server routes webui.Path, /ui/, to it
	defer srv.Close()

	// The browser keeps the session cookie; it follows no redirect here,
	// to show them.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(srv.URL + "/ui/stream?id=order-1")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))

	resp, err = client.PostForm(srv.URL+"/ui/login", url.Values{"user": {"admin"}, "password": {"s3cret"}, "next": {"/ui/stream?id=order-1"}})
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))

	req, _ := http.NewRequest("GET", srv.URL+resp.Header.Get("Location"), nil)
	req.AddCookie(resp.Cookies()[0])
	resp, err = client.Do(req)
	if err != nil {
		panic(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(string(page), "OrderPlaced"))
	// Output:
	// 303 /ui/login?next=%2Fui%2Fstream%3Fid%3Dorder-1
	// 303 /ui/stream?id=order-1
	// 200 true
}
