package storetest

//lint:file-ignore ST1005 the domain errors quote the messages of the dcb.events examples verbatim

// The worked examples of the dynamic consistency boundary specification
// (dcb.events: course subscriptions, unique user name, invoice number,
// opt-in token, prevention of duplicate records, dynamic product price),
// each a table of scenarios (given events, when a command, then the events
// recorded or the command refused), decided through aggregate.Decider on
// the engine under test.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
)

// scenario is one worked example's case.
type scenario[C any] struct {
	name   string
	given  []any
	when   C
	then   []any  // the events recorded, when the command is accepted
	reject string // the domain error's message, when it is refused
}

// runScenarios decides each scenario on a fresh store.
func runScenarios[S, C any](t *testing.T, nb NewBackend, def aggregate.Decision[S, C, any], scenarios []scenario[C]) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s, b := open(t, nb)
			needConditions(t, b)
			ctx := context.Background()
			for i, g := range sc.given {
				e, err := def.Codec.Encode(g)
				if err != nil {
					t.Fatal(err)
				}
				e.Tags = def.Tags(g)
				mustAppend(t, s, fmt.Sprint("given-", i), cairn.NoStream, e)
			}
			d, err := aggregate.NewDecider(s, def, aggregate.DecisionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Handle(ctx, sc.when)
			if sc.reject != "" {
				if err == nil || err.Error() != sc.reject {
					t.Fatalf("when %+v: %v, want the command refused with %q", sc.when, err, sc.reject)
				}
				wantLogLen(t, s, len(sc.given))
				return
			}
			if err != nil {
				t.Fatalf("when %+v: %v", sc.when, err)
			}
			if !reflect.DeepEqual(res.Events, sc.then) {
				t.Fatalf("when %+v: recorded %+v, want %+v", sc.when, res.Events, sc.then)
			}
			// The events are in the store, as recorded, with their tags.
			log := readAll(t, s)
			if len(log) != len(sc.given)+len(sc.then) {
				t.Fatalf("the log holds %d events, want %d", len(log), len(sc.given)+len(sc.then))
			}
			for i, e := range log[len(sc.given):] {
				got, err := def.Codec.Decode(e)
				if err != nil || !reflect.DeepEqual(got, sc.then[i]) || !reflect.DeepEqual(e.Tags, def.Tags(sc.then[i])) {
					t.Fatalf("recorded event %d is %+v (tags %v), %v; want %+v (tags %v)", i, got, e.Tags, err, sc.then[i], def.Tags(sc.then[i]))
				}
			}
		})
	}
}

func register(c *aggregate.Codec[any], types ...any) {
	for _, v := range types {
		if err := registerValue(c, v); err != nil {
			panic(err)
		}
	}
}

// registerValue registers the type of v under its Go name.
func registerValue(c *aggregate.Codec[any], v any) error {
	switch v.(type) {
	case courseDefined:
		return aggregate.Register[courseDefined](c, "CourseDefined")
	case courseCapacityChanged:
		return aggregate.Register[courseCapacityChanged](c, "CourseCapacityChanged")
	case studentSubscribedToCourse:
		return aggregate.Register[studentSubscribedToCourse](c, "StudentSubscribedToCourse")
	case accountRegistered:
		return aggregate.Register[accountRegistered](c, "AccountRegistered")
	case accountClosed:
		return aggregate.Register[accountClosed](c, "AccountClosed")
	case usernameChanged:
		return aggregate.Register[usernameChanged](c, "UsernameChanged")
	case invoiceCreated:
		return aggregate.Register[invoiceCreated](c, "InvoiceCreated")
	case signUpInitiated:
		return aggregate.Register[signUpInitiated](c, "SignUpInitiated")
	case signUpConfirmed:
		return aggregate.Register[signUpConfirmed](c, "SignUpConfirmed")
	case orderPlaced:
		return aggregate.Register[orderPlaced](c, "OrderPlaced")
	case productDefined:
		return aggregate.Register[productDefined](c, "ProductDefined")
	case productPriceChanged:
		return aggregate.Register[productPriceChanged](c, "ProductPriceChanged")
	case productsOrdered:
		return aggregate.Register[productsOrdered](c, "ProductsOrdered")
	}
	return fmt.Errorf("no event type %T", v)
}

// The events of the examples, as dcb.events defines them.
type (
	courseDefined struct {
		CourseID string
		Capacity int
	}
	courseCapacityChanged struct {
		CourseID    string
		NewCapacity int
	}
	studentSubscribedToCourse struct{ StudentID, CourseID string }

	accountRegistered struct{ Username string }
	accountClosed     struct{ Username string }
	usernameChanged   struct{ OldUsername, NewUsername string }

	invoiceCreated struct {
		InvoiceNumber int
		InvoiceData   string
	}

	signUpInitiated struct {
		Email, OTP, Name string
		At               int // the minute of the sign-up
	}
	signUpConfirmed struct{ Email, OTP, Name string }

	orderPlaced struct{ OrderID, IdempotencyToken string }

	productDefined struct {
		ProductID string
		Price     int
		At        int
	}
	productPriceChanged struct {
		ProductID string
		NewPrice  int
		At        int
	}
	productsOrdered struct{ Items []orderItem }
	orderItem       struct {
		ProductID string
		Price     int
	}
)

func exampleTags(e any) []string {
	switch e := e.(type) {
	case courseDefined:
		return []string{"course:" + e.CourseID}
	case courseCapacityChanged:
		return []string{"course:" + e.CourseID}
	case studentSubscribedToCourse:
		return []string{"student:" + e.StudentID, "course:" + e.CourseID}
	case accountRegistered:
		return []string{"username:" + e.Username}
	case accountClosed:
		return []string{"username:" + e.Username}
	case usernameChanged:
		return []string{"username:" + e.OldUsername, "username:" + e.NewUsername}
	case invoiceCreated:
		return []string{fmt.Sprint("invoice:", e.InvoiceNumber)}
	case signUpInitiated:
		return []string{"email:" + e.Email, "otp:" + e.OTP}
	case signUpConfirmed:
		return []string{"email:" + e.Email, "otp:" + e.OTP}
	case orderPlaced:
		return []string{"order:" + e.OrderID, "idempotency:" + e.IdempotencyToken}
	case productDefined:
		return []string{"product:" + e.ProductID}
	case productPriceChanged:
		return []string{"product:" + e.ProductID}
	case productsOrdered:
		var tags []string
		for _, it := range e.Items {
			tags = append(tags, "product:"+it.ProductID)
		}
		return tags
	}
	return nil
}

func exampleCodec() *aggregate.Codec[any] {
	c := aggregate.NewCodec[any](nil)
	register(c, courseDefined{}, courseCapacityChanged{}, studentSubscribedToCourse{},
		accountRegistered{}, accountClosed{}, usernameChanged{}, invoiceCreated{},
		signUpInitiated{}, signUpConfirmed{}, orderPlaced{},
		productDefined{}, productPriceChanged{}, productsOrdered{})
	return c
}

func item(types []string, tags ...string) cairn.QueryItem {
	return cairn.QueryItem{Types: types, Tags: tags}
}

func types(t ...string) []string { return t }

// decision fills in what every example's decision shares.
func decision[S, C any](name string, initial func(C) S, model func(C) []aggregate.Projection[S, any], decide func(S, C) ([]any, error)) aggregate.Decision[S, C, any] {
	return aggregate.Decision[S, C, any]{
		Name: name, Initial: initial, Model: model, Decide: decide,
		Tags: exampleTags, Codec: exampleCodec(),
		Stream: func(C) string { return "dcb" },
	}
}

// testDCBExamples runs the worked examples of dcb.events.
func testDCBExamples(t *testing.T, nb NewBackend) {
	t.Run("CourseSubscriptions", func(t *testing.T) { courseSubscriptions(t, nb) })
	t.Run("UniqueUsername", func(t *testing.T) { uniqueUsername(t, nb) })
	t.Run("InvoiceNumber", func(t *testing.T) { invoiceNumber(t, nb) })
	t.Run("OptInToken", func(t *testing.T) { optInToken(t, nb) })
	t.Run("PreventRecordDuplication", func(t *testing.T) { preventDuplication(t, nb) })
	t.Run("DynamicProductPrice", func(t *testing.T) { dynamicProductPrice(t, nb) })
}

// Course subscriptions: a course has a capacity that can change; a
// student subscribes to a course once, to at most 5 courses, and never
// beyond a course's capacity.

type (
	defineCourse struct {
		CourseID string
		Capacity int
	}
	changeCourseCapacity struct {
		CourseID    string
		NewCapacity int
	}
	subscribeStudentToCourse struct{ StudentID, CourseID string }
)

type courseState struct {
	Exists            bool
	Capacity          int
	CourseSubs        int
	StudentSubs       int
	AlreadySubscribed bool
}

func courseExists(c string) aggregate.Projection[courseState, any] {
	return aggregate.Projection[courseState, any]{
		Query:  cairn.Query{Items: []cairn.QueryItem{item(types("CourseDefined"), "course:"+c)}},
		Evolve: func(s courseState, _ any) courseState { s.Exists = true; return s },
	}
}

func courseCapacity(c string) aggregate.Projection[courseState, any] {
	return aggregate.Projection[courseState, any]{
		Query: cairn.Query{Items: []cairn.QueryItem{item(types("CourseDefined", "CourseCapacityChanged"), "course:"+c)}},
		Evolve: func(s courseState, e any) courseState {
			switch e := e.(type) {
			case courseDefined:
				s.Capacity = e.Capacity
			case courseCapacityChanged:
				s.Capacity = e.NewCapacity
			}
			return s
		},
	}
}

func courseDecisions() (aggregate.Decision[courseState, defineCourse, any], aggregate.Decision[courseState, changeCourseCapacity, any], aggregate.Decision[courseState, subscribeStudentToCourse, any]) {
	define := decision("DefineCourse", nil,
		func(c defineCourse) []aggregate.Projection[courseState, any] {
			return []aggregate.Projection[courseState, any]{courseExists(c.CourseID)}
		},
		func(s courseState, c defineCourse) ([]any, error) {
			if s.Exists {
				return nil, fmt.Errorf("Course with id %q already exists", c.CourseID)
			}
			return []any{courseDefined(c)}, nil
		})
	change := decision("ChangeCourseCapacity", nil,
		func(c changeCourseCapacity) []aggregate.Projection[courseState, any] {
			return []aggregate.Projection[courseState, any]{courseExists(c.CourseID), courseCapacity(c.CourseID)}
		},
		func(s courseState, c changeCourseCapacity) ([]any, error) {
			switch {
			case !s.Exists:
				return nil, fmt.Errorf("Course %q does not exist", c.CourseID)
			case s.Capacity == c.NewCapacity:
				return nil, fmt.Errorf("New capacity %d is the same as the current capacity", c.NewCapacity)
			}
			return []any{courseCapacityChanged(c)}, nil
		})
	subscribed := types("StudentSubscribedToCourse")
	subscribe := decision("SubscribeStudentToCourse", nil,
		func(c subscribeStudentToCourse) []aggregate.Projection[courseState, any] {
			return []aggregate.Projection[courseState, any]{
				courseExists(c.CourseID), courseCapacity(c.CourseID),
				{Query: cairn.Query{Items: []cairn.QueryItem{item(subscribed, "course:"+c.CourseID)}},
					Evolve: func(s courseState, _ any) courseState { s.CourseSubs++; return s }},
				{Query: cairn.Query{Items: []cairn.QueryItem{item(subscribed, "student:"+c.StudentID)}},
					Evolve: func(s courseState, _ any) courseState { s.StudentSubs++; return s }},
				{Query: cairn.Query{Items: []cairn.QueryItem{item(subscribed, "student:"+c.StudentID, "course:"+c.CourseID)}},
					Evolve: func(s courseState, _ any) courseState { s.AlreadySubscribed = true; return s }},
			}
		},
		func(s courseState, c subscribeStudentToCourse) ([]any, error) {
			switch {
			case !s.Exists:
				return nil, fmt.Errorf("Course %q does not exist", c.CourseID)
			case s.CourseSubs >= s.Capacity:
				return nil, fmt.Errorf("Course %q is already fully booked", c.CourseID)
			case s.AlreadySubscribed:
				return nil, errors.New("Student already subscribed to this course")
			case s.StudentSubs >= 5:
				return nil, errors.New("Student already subscribed to 5 courses")
			}
			return []any{studentSubscribedToCourse(c)}, nil
		})
	return define, change, subscribe
}

func courseSubscriptions(t *testing.T, nb NewBackend) {
	define, change, subscribe := courseDecisions()
	runScenarios(t, nb, define, []scenario[defineCourse]{
		{name: "define course with existing id", given: []any{courseDefined{"c1", 10}}, when: defineCourse{"c1", 15}, reject: `Course with id "c1" already exists`},
		{name: "define course with new id", when: defineCourse{"c1", 15}, then: []any{courseDefined{"c1", 15}}},
	})
	runScenarios(t, nb, change, []scenario[changeCourseCapacity]{
		{name: "change capacity of a non-existing course", when: changeCourseCapacity{"c0", 15}, reject: `Course "c0" does not exist`},
		{name: "change capacity of a course to the same value", given: []any{courseDefined{"c1", 12}}, when: changeCourseCapacity{"c1", 12}, reject: "New capacity 12 is the same as the current capacity"},
		{name: "change capacity of a course to a new value", given: []any{courseDefined{"c1", 12}}, when: changeCourseCapacity{"c1", 15}, then: []any{courseCapacityChanged{"c1", 15}}},
	})
	runScenarios(t, nb, subscribe, []scenario[subscribeStudentToCourse]{
		{name: "subscribe student to non-existing course", when: subscribeStudentToCourse{"s1", "c0"}, reject: `Course "c0" does not exist`},
		{name: "subscribe student to fully booked course",
			given: []any{courseDefined{"c1", 3}, studentSubscribedToCourse{"s1", "c1"}, studentSubscribedToCourse{"s2", "c1"}, studentSubscribedToCourse{"s3", "c1"}},
			when:  subscribeStudentToCourse{"s4", "c1"}, reject: `Course "c1" is already fully booked`},
		{name: "subscribe student to a course whose capacity grew",
			given: []any{courseDefined{"c1", 1}, studentSubscribedToCourse{"s1", "c1"}, courseCapacityChanged{"c1", 2}},
			when:  subscribeStudentToCourse{"s2", "c1"}, then: []any{studentSubscribedToCourse{"s2", "c1"}}},
		{name: "subscribe student to the same course twice",
			given: []any{courseDefined{"c1", 10}, studentSubscribedToCourse{"s1", "c1"}},
			when:  subscribeStudentToCourse{"s1", "c1"}, reject: "Student already subscribed to this course"},
		{name: "subscribe student to more than 5 courses",
			given: []any{courseDefined{"c6", 10}, studentSubscribedToCourse{"s1", "c1"}, studentSubscribedToCourse{"s1", "c2"},
				studentSubscribedToCourse{"s1", "c3"}, studentSubscribedToCourse{"s1", "c4"}, studentSubscribedToCourse{"s1", "c5"}},
			when: subscribeStudentToCourse{"s1", "c6"}, reject: "Student already subscribed to 5 courses"},
		{name: "subscribe student to course", given: []any{courseDefined{"c1", 10}}, when: subscribeStudentToCourse{"s1", "c1"}, then: []any{studentSubscribedToCourse{"s1", "c1"}}},
	})
	// Twelve students race for the three seats of a course, while another
	// course takes subscriptions: exactly three get a seat, each decided
	// on every subscription committed before it.
	t.Run("students racing for the last seats", func(t *testing.T) {
		s, b := open(t, nb)
		needConditions(t, b)
		ctx := context.Background()
		def, err := aggregate.NewDecider(s, define, aggregate.DecisionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []defineCourse{{"c1", 3}, {"c2", 100}} {
			if _, err := def.Handle(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		sub, err := aggregate.NewDecider(s, subscribe, aggregate.DecisionOptions{MaxAttempts: 50})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 12)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = sub.Handle(ctx, subscribeStudentToCourse{fmt.Sprint("s", i), "c1"})
				if _, err := sub.Handle(ctx, subscribeStudentToCourse{fmt.Sprint("s", i), "c2"}); err != nil {
					t.Errorf("subscription to the course with room: %v", err)
				}
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case err.Error() != `Course "c1" is already fully booked`:
				t.Fatalf("a student got %v", err)
			}
		}
		if won != 3 {
			t.Fatalf("%d students got one of the 3 seats", won)
		}
		if got := len(readQuery(t, s, query(item(types("StudentSubscribedToCourse"), "course:c1")))); got != 3 {
			t.Fatalf("%d subscriptions to c1 recorded, want 3", got)
		}
	})
}

// Unique user name: a user name is claimed by a registration, released by
// the account's closure, and moved by a change of name.
