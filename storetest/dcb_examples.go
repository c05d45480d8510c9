package storetest

//lint:file-ignore ST1005 the domain errors quote the messages of the dcb.events examples verbatim

// The dcb.events examples after course subscriptions: unique user name,
// invoice number, opt-in token, prevention of duplicate records, dynamic
// product price.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
)

type registerAccount struct{ Username string }

func uniqueUsername(t *testing.T, nb NewBackend) {
	register := decision("RegisterAccount", nil,
		func(c registerAccount) []aggregate.Projection[bool, any] {
			return []aggregate.Projection[bool, any]{{
				Query: cairn.Query{Items: []cairn.QueryItem{item(types("AccountRegistered", "AccountClosed", "UsernameChanged"), "username:"+c.Username)}},
				Evolve: func(claimed bool, e any) bool {
					switch e := e.(type) {
					case accountRegistered:
						return true
					case accountClosed:
						return false
					case usernameChanged:
						return e.NewUsername == c.Username
					}
					return claimed
				},
			}}
		},
		func(claimed bool, c registerAccount) ([]any, error) {
			if claimed {
				return nil, fmt.Errorf("Username %q is claimed", c.Username)
			}
			return []any{accountRegistered(c)}, nil
		})
	runScenarios(t, nb, register, []scenario[registerAccount]{
		{name: "register account with claimed username", given: []any{accountRegistered{"u1"}}, when: registerAccount{"u1"}, reject: `Username "u1" is claimed`},
		{name: "register account with unused username", when: registerAccount{"u1"}, then: []any{accountRegistered{"u1"}}},
		{name: "register account with another account's username", given: []any{accountRegistered{"u2"}}, when: registerAccount{"u1"}, then: []any{accountRegistered{"u1"}}},
		{name: "register account with username of a closed account", given: []any{accountRegistered{"u1"}, accountClosed{"u1"}}, when: registerAccount{"u1"}, then: []any{accountRegistered{"u1"}}},
		{name: "register account with a username another account changed to", given: []any{accountRegistered{"u0"}, usernameChanged{"u0", "u1"}}, when: registerAccount{"u1"}, reject: `Username "u1" is claimed`},
		{name: "register account with a username another account changed from", given: []any{accountRegistered{"u1"}, usernameChanged{"u1", "u2"}}, when: registerAccount{"u1"}, then: []any{accountRegistered{"u1"}}},
	})
}

// Invoice number: invoices are numbered 1, 2, 3 … with no gap, each number
// read from the last invoice alone.

type createInvoice struct{ InvoiceData string }

func invoiceNumber(t *testing.T, nb NewBackend) {
	create := decision("CreateInvoice", func(createInvoice) int { return 1 },
		func(createInvoice) []aggregate.Projection[int, any] {
			return []aggregate.Projection[int, any]{{
				Query:    cairn.Query{Items: []cairn.QueryItem{item(types("InvoiceCreated"))}},
				Evolve:   func(_ int, e any) int { return e.(invoiceCreated).InvoiceNumber + 1 },
				OnlyLast: true,
			}}
		},
		func(next int, c createInvoice) ([]any, error) {
			return []any{invoiceCreated{next, c.InvoiceData}}, nil
		})
	runScenarios(t, nb, create, []scenario[createInvoice]{
		{name: "create first invoice", when: createInvoice{"foo"}, then: []any{invoiceCreated{1, "foo"}}},
		{name: "create second invoice", given: []any{invoiceCreated{1, "foo"}}, when: createInvoice{"bar"}, then: []any{invoiceCreated{2, "bar"}}},
		{name: "create an invoice after many", given: []any{invoiceCreated{1, "a"}, invoiceCreated{2, "b"}, invoiceCreated{3, "c"}}, when: createInvoice{"d"}, then: []any{invoiceCreated{4, "d"}}},
	})
	t.Run("concurrent invoices are numbered without gaps", func(t *testing.T) {
		s, b := open(t, nb)
		needConditions(t, b)
		d, err := aggregate.NewDecider(s, create, aggregate.DecisionOptions{MaxAttempts: 100})
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := d.Handle(context.Background(), createInvoice{fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for i, e := range readAll(t, s) {
			v, err := create.Codec.Decode(e)
			if err != nil || v.(invoiceCreated).InvoiceNumber != i+1 {
				t.Fatalf("invoice %d is %+v, %v; want number %d", i, v, err, i+1)
			}
		}
		wantLogLen(t, s, n)
	})
}

// Opt-in token: a sign-up is confirmed with the one-time password sent to
// its e-mail address, once, within 60 minutes.

type confirmSignUp struct {
	Email, OTP string
	Now        int // the current minute
}

type signUp struct {
	Initiated, Confirmed bool
	Name                 string
	At                   int
}

func optInToken(t *testing.T, nb NewBackend) {
	confirm := decision("ConfirmSignUp", nil,
		func(c confirmSignUp) []aggregate.Projection[signUp, any] {
			return []aggregate.Projection[signUp, any]{{
				Query: cairn.Query{Items: []cairn.QueryItem{item(types("SignUpInitiated", "SignUpConfirmed"), "email:"+c.Email, "otp:"+c.OTP)}},
				Evolve: func(s signUp, e any) signUp {
					switch e := e.(type) {
					case signUpInitiated:
						s.Initiated, s.Name, s.At = true, e.Name, e.At
					case signUpConfirmed:
						s.Confirmed = true
					}
					return s
				},
			}}
		},
		func(s signUp, c confirmSignUp) ([]any, error) {
			switch {
			case !s.Initiated:
				return nil, errors.New("No pending sign-up for this OTP / email address")
			case s.Confirmed:
				return nil, errors.New("OTP was already used")
			case c.Now-s.At > 60:
				return nil, errors.New("OTP expired")
			}
			return []any{signUpConfirmed{c.Email, c.OTP, s.Name}}, nil
		})
	initiated := signUpInitiated{"john@doe.tld", "111111", "John Doe", 0}
	runScenarios(t, nb, confirm, []scenario[confirmSignUp]{
		{name: "confirm sign-up for a non-existing OTP", given: []any{initiated}, when: confirmSignUp{"john@doe.tld", "000000", 1}, reject: "No pending sign-up for this OTP / email address"},
		{name: "confirm sign-up for another e-mail address", given: []any{initiated}, when: confirmSignUp{"jane@doe.tld", "111111", 1}, reject: "No pending sign-up for this OTP / email address"},
		{name: "confirm sign-up with a used OTP", given: []any{initiated, signUpConfirmed{"john@doe.tld", "111111", "John Doe"}}, when: confirmSignUp{"john@doe.tld", "111111", 1}, reject: "OTP was already used"},
		{name: "confirm sign-up with an expired OTP", given: []any{initiated}, when: confirmSignUp{"john@doe.tld", "111111", 61}, reject: "OTP expired"},
		{name: "confirm sign-up with a valid OTP", given: []any{initiated}, when: confirmSignUp{"john@doe.tld", "111111", 60}, then: []any{signUpConfirmed{"john@doe.tld", "111111", "John Doe"}}},
	})
}

// Prevent record duplication: an order placed with an idempotency token
// already used is a re-submission.

type placeOrder struct{ OrderID, IdempotencyToken string }

func preventDuplication(t *testing.T, nb NewBackend) {
	place := decision("PlaceOrder", nil,
		func(c placeOrder) []aggregate.Projection[bool, any] {
			return []aggregate.Projection[bool, any]{{
				Query:  cairn.Query{Items: []cairn.QueryItem{item(types("OrderPlaced"), "idempotency:"+c.IdempotencyToken)}},
				Evolve: func(bool, any) bool { return true },
			}}
		},
		func(used bool, c placeOrder) ([]any, error) {
			if used {
				return nil, errors.New("Re-submission")
			}
			return []any{orderPlaced(c)}, nil
		})
	runScenarios(t, nb, place, []scenario[placeOrder]{
		{name: "place order with previously used idempotency token", given: []any{orderPlaced{"o12345", "11111"}}, when: placeOrder{"o54321", "11111"}, reject: "Re-submission"},
		{name: "place order with new idempotency token", given: []any{orderPlaced{"o12345", "11111"}}, when: placeOrder{"o54321", "22222"}, then: []any{orderPlaced{"o54321", "22222"}}},
	})
}

// Dynamic product price: an order holds the prices displayed to the
// customer; a price stays valid for 10 minutes after it was replaced, and
// an order of several products is one decision over all of them.

type orderProducts struct {
	Items []orderItem
	Now   int
}

// prices maps a product to its valid prices.
type prices map[string][]int

func dynamicProductPrice(t *testing.T, nb NewBackend) {
	order := decision("OrderProducts", func(orderProducts) prices { return prices{} },
		func(c orderProducts) []aggregate.Projection[prices, any] {
			var model []aggregate.Projection[prices, any]
			for _, it := range c.Items {
				model = append(model, aggregate.Projection[prices, any]{
					Query: cairn.Query{Items: []cairn.QueryItem{item(types("ProductDefined", "ProductPriceChanged"), "product:"+it.ProductID)}},
					Evolve: func(p prices, e any) prices {
						next := make(prices, len(p)+1)
						for k, v := range p {
							next[k] = v
						}
						switch e := e.(type) {
						case productDefined:
							next[e.ProductID] = []int{e.Price}
						case productPriceChanged:
							if c.Now-e.At <= 10 {
								next[e.ProductID] = append(append([]int(nil), p[e.ProductID]...), e.NewPrice)
							} else {
								next[e.ProductID] = []int{e.NewPrice}
							}
						}
						return next
					},
				})
			}
			return model
		},
		func(p prices, c orderProducts) ([]any, error) {
			for _, it := range c.Items {
				valid := false
				for _, price := range p[it.ProductID] {
					valid = valid || price == it.Price
				}
				if !valid {
					return nil, errors.New("Price is no longer valid")
				}
			}
			return []any{productsOrdered{c.Items}}, nil
		})
	p1 := func(price int) []orderItem { return []orderItem{{"p1", price}} }
	runScenarios(t, nb, order, []scenario[orderProducts]{
		{name: "order product with a displayed price that was never valid", given: []any{productDefined{"p1", 123, 80}}, when: orderProducts{p1(100), 100}, reject: "Price is no longer valid"},
		{name: "order product with a price that was changed more than 10 minutes ago", given: []any{productDefined{"p1", 123, 80}, productPriceChanged{"p1", 134, 80}}, when: orderProducts{p1(123), 100}, reject: "Price is no longer valid"},
		{name: "order product with initial valid price", given: []any{productDefined{"p1", 123, 80}}, when: orderProducts{p1(123), 100}, then: []any{productsOrdered{p1(123)}}},
		{name: "order product with a price that was changed less than 10 minutes ago", given: []any{productDefined{"p1", 123, 80}, productPriceChanged{"p1", 134, 91}}, when: orderProducts{p1(123), 100}, then: []any{productsOrdered{p1(123)}}},
		{name: "order product with valid new price", given: []any{productDefined{"p1", 123, 80}, productPriceChanged{"p1", 134, 91}}, when: orderProducts{p1(134), 100}, then: []any{productsOrdered{p1(134)}}},
		{name: "order multiple products with valid prices",
			given: []any{productDefined{"p1", 123, 80}, productPriceChanged{"p1", 134, 91}, productDefined{"p2", 321, 92}},
			when:  orderProducts{[]orderItem{{"p1", 123}, {"p2", 321}}, 100}, then: []any{productsOrdered{[]orderItem{{"p1", 123}, {"p2", 321}}}}},
		{name: "order multiple products, one price no longer valid",
			given: []any{productDefined{"p1", 123, 80}, productDefined{"p2", 321, 80}, productPriceChanged{"p2", 300, 85}},
			when:  orderProducts{[]orderItem{{"p1", 123}, {"p2", 321}}, 100}, reject: "Price is no longer valid"},
	})
}
