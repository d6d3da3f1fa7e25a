package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/schemas"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/locate"
)

var (
	faultSeed       = flag.Uint64("fault.seed", 0, "seed of the fault suite; 0 picks one, printed so that the run can be replayed")
	faultIterations = flag.Int("fault.iterations", 50, "iterations of the fault suite")
)

// The faults the suite injects.
const (
	faultKillConsumer   = "kill-consumer"   // SIGKILL a channel consumer process
	faultKillAggregator = "kill-aggregator" // SIGKILL one of the two aggregator processes
	faultKillWebAPI     = "kill-webapi"     // SIGKILL the web API process
	faultOutage         = "store-outage"    // an embedded store refuses writes for longer than the deadline
	faultRebalance      = "rebalance"       // a second consumer of a channel joins its group mid-run
	faultKfakeRestart   = "kfake-restart"   // the embedded kfake broker stops and starts again
	faultKillUp         = "kill-up"         // SIGKILL `erasure up`, broker and every role with it
	faultKafkaRestart   = "kafka-restart"   // SIGKILL the test's own Apache Kafka broker, then start it again
)

// outageDeadline is the deadline of requests submitted into a store outage.
// The outage outlasts it and SQLite's busy timeout (5 s), so that the
// processes' writes fail rather than wait it out.
const outageDeadline = 2 * time.Second

// faultStep is one iteration: a bulk delete, with one fault injected at a
// point of it.
type faultStep struct {
	n      int
	kind   string
	target string // the channel, aggregator or store file hit
	// The fault strikes at after decisions of the run's requests, plus at.
	after    int
	at       time.Duration
	down     time.Duration // how long the process, broker or store stays away
	contacts int
	batch    int
}

func (s faultStep) String() string {
	target := ""
	if s.target != "" {
		target = " " + s.target
	}
	return fmt.Sprintf("iteration %d: %s%s after %d decisions and %s, down %s, %d contacts in batches of %d", s.n, s.kind, target,
		s.after, s.at, s.down, s.contacts, s.batch)
}

// planFaults draws every iteration from the seed: which fault, where, when,
// on how many contacts. The same seed gives the same plan; the timing of
// processes on a busy machine still varies, so a replay injects the same
// faults at the same moments, not into the same instructions.
func planFaults(seed uint64, n int) (roles, up, kafka []faultStep) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	nRestarts := 1 + n/100
	nKafka := nRestarts + 2
	nUp := max(2, n/10)
	// Outages take the longest (they must outlast SQLite's busy timeout),
	// so they come up less often than process kills.
	kinds := []string{faultKillConsumer, faultKillConsumer, faultKillAggregator, faultKillWebAPI, faultOutage, faultRebalance, faultKfakeRestart}
	var order []string
	step := func(i int, kind string) faultStep {
		s := faultStep{n: i + 1, kind: kind, at: time.Duration(rng.IntN(100)) * time.Millisecond,
			down: time.Duration(rng.IntN(600)) * time.Millisecond, contacts: 2 + rng.IntN(4), batch: 1 + rng.IntN(2)}
		s.after = rng.IntN((s.contacts + s.batch - 1) / s.batch)
		switch kind {
		case faultKillConsumer, faultRebalance:
			s.target = string(schemas.AllChannels[rng.IntN(len(schemas.AllChannels))])
		case faultKillAggregator:
			s.target = []string{"aggregator-a", "aggregator-b"}[rng.IntN(2)]
		case faultOutage:
			s.target = []string{"warehouse.db", "index.db", "ledger.db"}[rng.IntN(3)]
			s.after, s.at = 0, 0
			s.down = 5500*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond
		}
		return s
	}
	for i := range n {
		switch {
		case i < n-nKafka-nUp:
			if len(order) == 0 {
				for _, k := range rng.Perm(len(kinds)) {
					order = append(order, kinds[k])
				}
			}
			roles = append(roles, step(i, order[0]))
			order = order[1:]
		case i < n-nKafka:
			up = append(up, step(i, faultKillUp))
		case i < n-nKafka+nRestarts:
			kafka = append(kafka, step(i, faultKafkaRestart))
		default:
			kafka = append(kafka, step(i, faultKillAggregator))
		}
	}
	return roles, up, kafka
}

// TestFault is the fault suite: bulk deletes through the product running as
// separate processes, each hit by one fault at a random point, after which
// every accepted request must have exactly one decision (audit entry and
// outcome, the one every reader showed), late entries only for results that
// came after it, every result audited, no residue of any contact deleted,
// nothing lost by any other contact, and an intact audit chain. See
// planFaults for what is varied; -fault.seed replays a run.
func TestFault(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the product as processes")
	}
	seed := *faultSeed
	if seed == 0 {
		seed = rand.Uint64() >> 11 // short enough to type
	}
	fmt.Fprintf(os.Stderr, "fault suite: seed %d, %d iterations (replay: go test ./cmd/erasure -run '^TestFault$' -fault.seed=%d -fault.iterations=%d)\n",
		seed, *faultIterations, seed, *faultIterations)
	roles, up, kafka := planFaults(seed, *faultIterations)
	bin := buildBinary(t)
	failed := func(what string) {
		if t.Failed() {
			t.Logf("%s failed; replay with -fault.seed=%d -fault.iterations=%d", what, seed, *faultIterations)
		}
	}

	t.Run("roles", func(t *testing.T) {
		defer failed("roles")
		ctx := t.Context()
		broker, err := startKfakeBroker(ctx, filepath.Join(t.TempDir(), "kafka"), 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close) // after the processes stop
		procs := map[string]string{"webapi": "webapi", "aggregator-a": "aggregator", "aggregator-b": "aggregator"}
		for _, ch := range schemas.AllChannels {
			procs["consumer-"+string(ch)] = "consumer:" + string(ch)
		}
		s := newServeStack(t, "roles", bin, broker, 6*len(roles)+12, seed, procs, nil)
		s.warmUp()
		for _, step := range roles {
			if !s.iterate(step) {
				return
			}
		}
		s.finish()
	})
	t.Run("up", func(t *testing.T) {
		defer failed("up")
		s := newUpStack(t, bin, 5*len(up)+12)
		for _, step := range up {
			if !s.iterate(step) {
				return
			}
		}
		s.finish()
	})
	t.Run("kafka", func(t *testing.T) {
		defer failed("kafka")
		ctx := t.Context()
		dir := t.TempDir()
		broker, err := startJVMKafka(ctx, t, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close) // after the processes stop
		s := newServeStack(t, "kafka", bin, broker, 6*len(kafka)+12, seed+1, kafkaStackProcs(), clickHouseLedger(t))
		s.warmUp()
		for _, step := range kafka {
			if !s.iterate(step) {
				return
			}
		}
		s.finish()
	})
}

// kafkaStackProcs are the processes of the stack on Apache Kafka: the web API,
// two aggregators and every channel in one process.
func kafkaStackProcs() map[string]string {
	var chs []string
	for _, ch := range schemas.AllChannels {
		chs = append(chs, "consumer:"+string(ch))
	}
	return map[string]string{"webapi": "webapi", "aggregator-a": "aggregator", "aggregator-b": "aggregator",
		"consumers": strings.Join(chs, ",")}
}

// clickHouseLedger puts a stack's ledger in a database of its own on the
// real ClickHouse server, which must be there under CI.
func clickHouseLedger(t *testing.T) map[string]any {
	t.Helper()
	addr := os.Getenv("ERASURE_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ERASURE_TEST_CLICKHOUSE_ADDR not set: start the servers with deploy/local/servers.sh")
		}
		t.Skip("ERASURE_TEST_CLICKHOUSE_ADDR not set")
	}
	db := fmt.Sprintf("fault_%d", time.Now().UnixNano())
	if err := createClickHouseDatabase(t, addr, db); err != nil {
		t.Fatal(err)
	}
	return map[string]any{
		"warehouse": map[string]any{"clickhouse": map[string]any{"addr": []string{addr}, "database": db}},
		"ledger":    map[string]any{"kind": "clickhouse"},
	}
}

// newUpStack runs `erasure up` (its embedded broker and every role in one
// process) on a data directory of its own.
func newUpStack(t *testing.T, bin string, contacts int) *faultStack {
	t.Helper()
	dir := t.TempDir()
	brokerPort := freePort(t)
	s := &faultStack{t: t, name: "up", bin: bin, dir: filepath.Join(dir, "data"), procs: map[string]*faultProc{},
		touched: map[string]bool{}}
	// The configuration of the checks and the CLI; `up` runs on flags.
	s.cfgPath = faultConfig(t, dir, fmt.Sprintf("127.0.0.1:%d", brokerPort), freePort(t), "unused", nil)
	p := &faultProc{name: "up", bin: bin, ready: "erasure is up", logPath: filepath.Join(dir, "up.log"),
		args: []string{"up", "--data", s.dir, "--broker-port", strconv.Itoa(brokerPort), "--http", "127.0.0.1:0",
			"--demo-contacts", strconv.Itoa(contacts), "--deadline", "8s"},
		env: []string{"ERASURE_KAFKA_INSTANCE_ID=fault-up"}}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	s.procs["up"] = p
	t.Cleanup(s.stopAll)
	if err := p.waitReady(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, closeStores, err := app.OpenStores(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeStores)
	s.st = st
	res, err := st.Index.Search(t.Context(), "contacts", stores.Query{Limit: contacts + 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Docs {
		s.contacts = append(s.contacts, demo.Contact{ID: d.ID})
	}
	if len(s.contacts) != contacts {
		t.Fatalf("up seeded %d contacts, want %d", len(s.contacts), contacts)
	}
	s.snapshot()
	return s
}

// faultRequest is a request an iteration had accepted, and what its
// submitter was shown of its outcome.
type faultRequest struct {
	id   string
	via  string // "cli" or "web"
	seen []faultSeen
}

// faultSeen is one outcome shown to the submitter: a CLI line, or a
// websocket message on one connection.
type faultSeen struct {
	conn     int
	status   schemas.Status
	auditSeq int64
	state    bool // the web API's answer to a watch, not a live outcome
}

// warmUp deletes one contact before the first fault, so that every
// consumer group has settled.
func (s *faultStack) warmUp() {
	s.t.Helper()
	ids := s.take(1)
	s.touch(ids)
	out := s.runCLI(s.t.Context(), 0, 1, 0, ids)
	if len(out) != 1 || out[0].status != schemas.StatusSucceeded {
		s.t.Fatalf("warm-up deletion: %+v", out)
	}
}

func (s *faultStack) touch(ids []string) {
	for _, id := range ids {
		s.touched[id] = true
	}
}

// cliLine is one result line of `delete --json`.
type cliLine struct {
	id       string
	status   schemas.Status
	auditSeq int64
}

// runCLI runs `erasure delete --wait --json` over ids in batches of batch
// and returns its result lines.
func (s *faultStack) runCLI(ctx context.Context, n, batch int, deadline time.Duration, ids []string) []cliLine {
	args := []string{"delete", "--config", s.cfgPath, "--actor", fmt.Sprintf("fault-%d", n), "--json", "--wait", "--quiet",
		"--batch", strconv.Itoa(batch), "--in-flight", "2"}
	if deadline > 0 {
		args = append(args, "--deadline", deadline.String())
	}
	var stdout, stderr bytes.Buffer
	code := run(ctx, append(args, "-"), strings.NewReader(strings.Join(ids, "\n")+"\n"), &stdout, &stderr)
	if code != 0 && code != 1 {
		s.t.Errorf("delete: exit %d\n%s", code, stderr.String())
	}
	var lines []cliLine
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if l == "" {
			continue
		}
		var v struct {
			RequestID string         `json:"request_id"`
			Status    schemas.Status `json:"status"`
			AuditSeq  int64          `json:"audit_seq"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			s.t.Errorf("delete printed %q: %v", l, err)
			continue
		}
		lines = append(lines, cliLine{v.RequestID, v.Status, v.AuditSeq})
	}
	return lines
}

// submitWeb submits one contact through the web API as an API client and
// follows its outcome on the websocket as a browser does, reconnecting and
// asking for the state after the connection drops. It returns the request
// (nil if the API never accepted it) once the outcome was shown, or when ctx
// ends.
func (s *faultStack) submitWeb(ctx context.Context, contact string) *faultRequest {
	var rid string
	for rid == "" {
		body, _ := json.Marshal(map[string]any{"contact_ids": []string{contact}})
		req, _ := http.NewRequestWithContext(ctx, "POST", s.webURL+"/api/v1/deletions", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil || !faultErr(err) {
				s.t.Errorf("submit through the web API: %v", err)
				return nil
			}
			time.Sleep(100 * time.Millisecond) // restarting
			continue
		}
		var acc struct {
			RequestID string `json:"request_id"`
		}
		err = json.NewDecoder(res.Body).Decode(&acc)
		res.Body.Close()
		switch {
		case res.StatusCode == http.StatusAccepted && err == nil:
			rid = acc.RequestID
		case res.StatusCode >= 500:
			time.Sleep(100 * time.Millisecond)
		default:
			s.t.Errorf("submit through the web API: %d", res.StatusCode)
			return nil
		}
	}
	fr := &faultRequest{id: rid, via: "web"}
	hdr := http.Header{"Authorization": {"Bearer " + s.token}, "Origin": {s.webURL}}
	wsURL := "ws" + strings.TrimPrefix(s.webURL, "http") + "/api/v1/ws"
	final := time.Time{}
	for conn := 0; ctx.Err() == nil; conn++ {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, hdr)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		watch, _ := json.Marshal(map[string]any{"type": "watch", "request_ids": []string{rid}})
		if err := c.WriteMessage(websocket.TextMessage, watch); err != nil {
			c.Close()
			continue
		}
		for {
			// Once shown, listen a little longer for a copy.
			wait := 30 * time.Second
			if !final.IsZero() {
				wait = time.Until(final.Add(time.Second))
			}
			c.SetReadDeadline(time.Now().Add(wait))
			_, raw, err := c.ReadMessage()
			if err != nil {
				c.Close()
				if !final.IsZero() {
					return fr
				}
				break
			}
			var m struct {
				Type      string                     `json:"type"`
				RequestID string                     `json:"request_id"`
				Status    schemas.Status             `json:"status"`
				AuditSeq  int64                      `json:"audit_seq"`
				Outcome   *schemas.DeletionCompleted `json:"outcome"`
			}
			if json.Unmarshal(raw, &m) != nil || m.RequestID != rid {
				continue
			}
			switch {
			case m.Type == "outcome":
				fr.seen = append(fr.seen, faultSeen{conn: conn, status: m.Status, auditSeq: m.AuditSeq})
			case m.Type == "state" && m.Outcome != nil:
				fr.seen = append(fr.seen, faultSeen{conn: conn, status: m.Outcome.Status, auditSeq: m.Outcome.AuditSeq, state: true})
			default:
				continue
			}
			if final.IsZero() {
				final = time.Now()
			}
		}
	}
	return fr
}

// iterate runs one step and checks it; false stops the suite.
func (s *faultStack) iterate(step faultStep) bool {
	t := s.t
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ids := s.take(step.contacts)
	s.touch(ids)
	var web string
	if _, ok := s.procs["webapi"]; ok {
		web = s.take(1)[0]
		s.touch([]string{web})
	}

	deadline := time.Duration(0)
	if step.kind == faultOutage {
		deadline = outageDeadline
		release, err := s.outage(ctx, step.target, step.down)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		defer release()
	}
	var (
		wg    sync.WaitGroup
		lines []cliLine
		webFR *faultRequest
	)
	wg.Go(func() { lines = s.runCLI(ctx, step.n, step.batch, deadline, ids) })
	if web != "" {
		wg.Go(func() { webFR = s.submitWeb(ctx, web) })
	}
	for s.decided(step.n) < step.after && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(step.at)
	decidedAtFault := s.decided(step.n)
	var extra *faultProc
	switch step.kind {
	case faultKillConsumer:
		s.restart("consumer-"+step.target, step.down)
	case faultKillAggregator:
		s.restart(step.target, step.down)
	case faultKillWebAPI:
		s.restart("webapi", step.down)
	case faultKillUp:
		s.restart("up", step.down)
	case faultRebalance:
		extra = s.addServe("extra-"+step.target, "consumer:"+step.target, false)
	case faultKfakeRestart, faultKafkaRestart:
		if err := s.broker.Restart(ctx, step.down); err != nil {
			t.Fatalf("%s: broker restart: %v", step, err)
		}
	}
	wg.Wait()
	if extra != nil {
		// Leaving is the second rebalance.
		extra.stop()
		delete(s.procs, extra.name)
	}

	var reqs []*faultRequest
	byID := map[string]*faultRequest{}
	for _, l := range lines {
		fr := byID[l.id]
		if fr == nil {
			fr = &faultRequest{id: l.id, via: "cli"}
			byID[l.id] = fr
			reqs = append(reqs, fr)
		}
		fr.seen = append(fr.seen, faultSeen{status: l.status, auditSeq: l.auditSeq})
	}
	if webFR != nil {
		reqs = append(reqs, webFR)
	}
	states := s.awaitDecisions(ctx, step, reqs)
	if t.Failed() {
		return false
	}

	// A user retries what failed; with the fault over it must succeed.
	var again []string
	for _, id := range append(slices.Clone(ids), web) {
		if id == "" {
			continue
		}
		if ok := s.decidedOK(id, reqs, states); !ok {
			again = append(again, id)
		}
	}
	if len(again) > 0 {
		// The retry gets the product's default deadline, as a user's would,
		// not the stack's short one: right after an outage the stores are
		// still catching up (owed scrubs, redelivered work).
		for _, l := range s.runCLI(ctx, step.n, step.batch, 30*time.Second, again) {
			fr := &faultRequest{id: l.id, via: "cli", seen: []faultSeen{{status: l.status, auditSeq: l.auditSeq}}}
			reqs = append(reqs, fr)
		}
		states = s.awaitDecisions(ctx, step, reqs)
		for _, id := range again {
			if !s.decidedOK(id, reqs, states) {
				t.Errorf("%s: contact %s not deleted by a retry after the fault", step, id)
			}
		}
	}
	s.check(step, reqs, states, append(ids, web))
	t.Logf("%s: %d of %d requests decided when it struck, %d contacts retried, %s", step, decidedAtFault, len(reqs)-len(again),
		len(again), time.Since(start).Round(time.Millisecond))
	return !t.Failed()
}

// decided counts the decisions of iteration n's requests so far.
func (s *faultStack) decided(n int) int {
	es, err := s.st.Ledger.Audit(s.t.Context(), stores.AuditFilter{Actor: fmt.Sprintf("fault-%d", n), Limit: stores.AuditMaxLimit})
	if err != nil {
		return -1
	}
	k := 0
	for _, e := range es {
		if e.IsDecision() {
			k++
		}
	}
	return k
}

// decidedOK reports whether some request of reqs that named contact
// succeeded (or found nothing, which leaves nothing either).
func (s *faultStack) decidedOK(contact string, reqs []*faultRequest, states map[string]stores.RequestState) bool {
	for _, r := range reqs {
		st := states[r.id]
		if st.Outcome != nil && slices.Contains(st.Request.ContactIDs, contact) &&
			(st.Outcome.Status == schemas.StatusSucceeded || st.Outcome.Status == schemas.StatusNotFound) {
			return true
		}
	}
	return false
}

// awaitDecisions waits until every request is decided and its outcome
// marked published, and returns their states.
func (s *faultStack) awaitDecisions(ctx context.Context, step faultStep, reqs []*faultRequest) map[string]stores.RequestState {
	states := map[string]stores.RequestState{}
	for _, r := range reqs {
		for {
			st, err := s.st.Ledger.State(ctx, r.id)
			if err == nil && st.Outcome != nil && st.Published {
				states[r.id] = st
				break
			}
			if ctx.Err() != nil {
				s.t.Errorf("%s: request %s (%s) has no published outcome (%v)", step, r.id, r.via, err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return states
}

// check asserts the invariants over an iteration's requests and contacts.
func (s *faultStack) check(step faultStep, reqs []*faultRequest, states map[string]stores.RequestState, contacts []string) {
	t := s.t
	ctx := t.Context()
	for _, r := range reqs {
		st := states[r.id]
		entries, err := s.st.Ledger.Audit(ctx, stores.AuditFilter{RequestID: r.id, Limit: stores.AuditMaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		var decisions []stores.AuditEntry
		for _, e := range entries {
			if e.IsDecision() {
				decisions = append(decisions, e)
			}
		}
		if len(decisions) != 1 {
			t.Errorf("%s: request %s has %d decision entries, want 1", step, r.id, len(decisions))
			continue
		}
		d := decisions[0]
		if st.Outcome.AuditSeq != d.Seq || st.Outcome.Status != d.Status || st.Outcome.RequestDigest != st.Request.ContentDigest() {
			t.Errorf("%s: request %s: outcome %s (seq %d) does not match its decision entry %s (seq %d)", step, r.id,
				st.Outcome.Status, st.Outcome.AuditSeq, d.Status, d.Seq)
		}
		// What the submitter saw is that decision, once per connection.
		perConn := map[int]int{}
		for _, seen := range r.seen {
			if seen.status != d.Status || seen.auditSeq != d.Seq {
				t.Errorf("%s: request %s: %s showed %s (seq %d), the decision is %s (seq %d)", step, r.id, r.via,
					seen.status, seen.auditSeq, d.Status, d.Seq)
			}
			if !seen.state {
				perConn[seen.conn]++
			}
		}
		for conn, n := range perConn {
			if n > 1 {
				t.Errorf("%s: request %s: its outcome was shown %d times on %s connection %d", step, r.id, n, r.via, conn)
			}
		}
		if len(r.seen) == 0 || (r.via == "cli" && len(r.seen) != 1) {
			t.Errorf("%s: request %s: %s showed %d outcomes, want one", step, r.id, r.via, len(r.seen))
		}
		s.checkLate(step, st, d, entries)
	}

	// Every contact some request deleted is gone; every other keeps all.
	for _, id := range contacts {
		if id == "" {
			continue
		}
		rem, err := s.st.Locator.Remaining(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.decidedOK(id, reqs, states) && rem.Total() != 0 {
			t.Errorf("%s: contact %s was deleted and still has %v", step, id, rem)
		}
	}
	s.checkNeighbours(step, contacts)
	if _, err := s.st.Ledger.VerifyChain(ctx); err != nil {
		t.Errorf("%s: %v", step, err)
	}
}

// checkLate asserts that a decided request's late entries each complete its
// decision with a result that came after it, once, and that every result the
// ledger holds for it is in the audit log.
func (s *faultStack) checkLate(step faultStep, st stores.RequestState, d stores.AuditEntry, entries []stores.AuditEntry) {
	t := s.t
	last := map[schemas.Channel]schemas.ChannelOutcome{}
	for _, co := range d.Channels {
		last[co.Channel] = co
	}
	// entries are newest first; replay them oldest first.
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.IsDecision() {
			continue
		}
		if e.Amends != d.Seq || len(e.Channels) != 1 {
			t.Errorf("%s: request %s: entry %d (%s) is neither its decision nor a late entry of it", step, st.Request.RequestID, e.Seq, e.Status)
			continue
		}
		co := e.Channels[0]
		if sameOutcome(last[co.Channel], co) {
			t.Errorf("%s: request %s: late entry %d repeats what the log already said of %s", step, st.Request.RequestID, e.Seq, co.Channel)
		}
		last[co.Channel] = co
	}
	for ch, r := range st.Results {
		co := last[ch]
		got := schemas.ChannelOutcome{Channel: ch, Status: r.Status, ErrorCode: r.ErrorCode, Artefacts: r.Artefacts}
		var deleted int64
		for _, a := range r.Artefacts {
			deleted += a.Deleted
		}
		if !sameOutcome(co, got) && !(co.Status == schemas.StatusSucceeded && deleted == 0) {
			t.Errorf("%s: request %s: the %s result (%s, %d deleted) is not in the audit log, which says %s", step,
				st.Request.RequestID, ch, r.Status, deleted, co.Status)
		}
	}
}

func sameOutcome(a, b schemas.ChannelOutcome) bool {
	if a.Status != b.Status || a.ErrorCode != b.ErrorCode || len(a.Artefacts) != len(b.Artefacts) {
		return false
	}
	for i, x := range a.Artefacts {
		y := b.Artefacts[i]
		if x.Artefact != y.Artefact || x.Before != y.Before || x.Deleted != y.Deleted || x.After != y.After {
			return false
		}
	}
	return true
}

// checkNeighbours checks the untouched contacts most at risk from these
// deletions (a shared email thread, the same day's data-lake file) and a few
// others: each still has everything it had.
func (s *faultStack) checkNeighbours(step faultStep, targets []string) {
	var at []demo.Contact
	for _, c := range s.contacts {
		if slices.Contains(targets, c.ID) {
			at = append(at, c)
		}
	}
	var check []string
	for _, c := range s.contacts[s.next:] {
		for _, tc := range at {
			if (c.ThreadID != "" && c.ThreadID == tc.ThreadID) || (!c.Date.IsZero() && c.Date.Format(time.DateOnly) == tc.Date.Format(time.DateOnly)) {
				check = append(check, c.ID)
				break
			}
		}
		if len(check) >= 8 {
			break
		}
	}
	if rest := s.contacts[s.next:]; len(rest) > 0 {
		check = append(check, rest[len(rest)-1].ID)
	}
	s.unchanged(step.String(), check)
}

// unchanged asserts that the contacts still hold what they held at the start.
func (s *faultStack) unchanged(what string, ids []string) {
	for _, id := range ids {
		if s.touched[id] {
			continue
		}
		rem, err := s.st.Locator.Remaining(s.t.Context(), id)
		if err != nil {
			s.t.Fatal(err)
		}
		if !sameRemaining(rem, s.initial[id]) {
			s.t.Errorf("%s: untouched contact %s holds %v, had %v", what, id, rem, s.initial[id])
		}
	}
}

func sameRemaining(a, b locate.Remaining) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// finish checks every contact no request named, and the whole chain.
func (s *faultStack) finish() {
	var ids []string
	for _, c := range s.contacts {
		ids = append(ids, c.ID)
	}
	s.unchanged(s.name+": at the end", ids)
	n, err := s.st.Ledger.VerifyChain(s.t.Context())
	if err != nil {
		s.t.Errorf("%s: %v", s.name, err)
	}
	s.t.Logf("%s: %d audit entries verified, %d contacts deleted, %d untouched", s.name, n, len(s.touched), len(s.contacts)-len(s.touched))
}

// The plan is the seed's alone, so a printed seed replays a run, and any
// run of the CI's size injects every fault.
func TestFaultPlan(t *testing.T) {
	for _, n := range []int{50, 500} {
		r1, u1, k1 := planFaults(42, n)
		r2, u2, k2 := planFaults(42, n)
		all := slices.Concat(r1, u1, k1)
		if fmt.Sprint(all) != fmt.Sprint(slices.Concat(r2, u2, k2)) {
			t.Fatalf("%d iterations: seed 42 planned two different runs", n)
		}
		if other, _, _ := planFaults(43, n); fmt.Sprint(other) == fmt.Sprint(r1) {
			t.Fatalf("%d iterations: seeds 42 and 43 planned the same run", n)
		}
		kinds := map[string]int{}
		for i, s := range all {
			if s.n != i+1 || s.after < 0 || s.after >= (s.contacts+s.batch-1)/s.batch {
				t.Fatalf("%d iterations: bad step %s", n, s)
			}
			kinds[s.kind]++
		}
		if len(all) != n || len(kinds) != 8 {
			t.Fatalf("%d iterations: planned %d steps of the kinds %v, want %d covering all 8", n, len(all), kinds, n)
		}
	}
}
