package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/erasure-project/erasure/internal/app"
	"github.com/erasure-project/erasure/internal/demo"
	"github.com/erasure-project/erasure/stores"
	"github.com/erasure-project/erasure/stores/kafka"
	"github.com/erasure-project/erasure/stores/locate"
	"github.com/erasure-project/erasure/stores/sqlite"
)

// faultProc is one process of the fault suite (`erasure serve` or
// `erasure up`), started again under the same name, arguments and Kafka
// instance ID after it was killed. Its output goes to one log file across
// restarts.
type faultProc struct {
	name, bin string
	args, env []string
	ready     string // a line containing this means it is serving
	logPath   string

	cmd    *exec.Cmd
	done   chan struct{}
	readyc chan struct{}
}

func (p *faultProc) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	// Never outlive the test binary, even one killed by its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(p.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s start %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.cmd, p.done, p.readyc = cmd, make(chan struct{}), make(chan struct{})
	readyc, ready := p.readyc, p.ready
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if ready != "" && strings.Contains(line, ready) {
				close(readyc)
				ready = ""
			}
		}
		io.Copy(io.Discard, pr)
		logf.Close()
	}()
	done := p.done
	go func() { cmd.Wait(); pw.Close(); close(done) }()
	return nil
}

func (p *faultProc) waitReady(d time.Duration) error {
	select {
	case <-p.readyc:
		return nil
	case <-p.done:
		return fmt.Errorf("%s exited before it was ready; see %s", p.name, p.logPath)
	case <-time.After(d):
		return fmt.Errorf("%s not ready within %s; see %s", p.name, d, p.logPath)
	}
}

func (p *faultProc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *faultProc) kill() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to stop and kills it if it has not within 30s.
func (p *faultProc) stop() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// faultBroker is the Kafka broker a stack runs on, restartable with its
// data: the embedded kfake broker in the test process, or an Apache Kafka
// broker the test started for itself.
type faultBroker interface {
	Addr() string
	// Restart stops the broker (as a crash would, where it can), keeps it
	// down for pause and starts it again on the same port and data.
	Restart(ctx context.Context, pause time.Duration) error
	Close()
}

// kfakeBroker is franz-go's kfake in the test process, persisting to a
// directory: Restart closes the cluster (flushing its state, every produce
// having been fsynced already) and starts a new one on the same port from
// the same directory.
type kfakeBroker struct {
	dir        string
	port       int
	partitions int32
	b          *kafka.EmbeddedBroker
}

func startKfakeBroker(ctx context.Context, dir string, partitions int32) (*kfakeBroker, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	k := &kfakeBroker{dir: dir, port: port, partitions: partitions}
	k.b, err = kafka.StartEmbedded(ctx, dir, port, partitions, nil)
	return k, err
}

func (k *kfakeBroker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

func (k *kfakeBroker) Restart(ctx context.Context, pause time.Duration) error {
	k.b.Close()
	time.Sleep(pause)
	var err error
	for range 50 { // the port can take a moment to be free again
		if k.b, err = kafka.StartEmbedded(ctx, k.dir, k.port, k.partitions, nil); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (k *kfakeBroker) Close() { k.b.Close() }

// jvmKafka is an Apache Kafka broker (KRaft, combined broker and controller)
// that the test runs from the jars deploy/local/servers.sh installs, on
// ports and in a directory of its own: never the shared server.
type jvmKafka struct {
	home, dir      string
	port, ctrlPort int
	proc           *faultProc
}

// kafkaHome is where deploy/local/servers.sh installed Apache Kafka.
func kafkaHome() string {
	cache := os.Getenv("ERASURE_LOCAL_CACHE")
	if cache == "" {
		cache = "/var/cache/erasure-local"
	}
	v := os.Getenv("ERASURE_LOCAL_KAFKA_VERSION")
	if v == "" {
		v = "4.1.2"
	}
	return filepath.Join(cache, "kafka-"+v)
}

func startJVMKafka(ctx context.Context, t *testing.T, dir string) (*jvmKafka, error) {
	home := kafkaHome()
	if _, err := os.Stat(filepath.Join(home, ".complete")); err != nil {
		if os.Getenv("CI") == "true" {
			return nil, fmt.Errorf("Apache Kafka is not installed in %s: run deploy/local/servers.sh install kafka", home)
		}
		t.Skipf("Apache Kafka is not installed in %s", home)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, err
	}
	k := &jvmKafka{home: home, dir: dir, port: freePort(t), ctrlPort: freePort(t)}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, k.port, k.ctrlPort, filepath.Join(dir, "data"))
	propsPath := filepath.Join(dir, "server.properties")
	log4j := "status = warn\nappender.file.type = File\nappender.file.name = FILE\nappender.file.fileName = " +
		filepath.Join(dir, "server.log") + "\nappender.file.layout.type = PatternLayout\nappender.file.layout.pattern = [%d] %p %m (%c)%n\n" +
		"rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n"
	if err := os.WriteFile(propsPath, []byte(props), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "log4j2.properties"), []byte(log4j), 0o600); err != nil {
		return nil, err
	}
	cp := filepath.Join(home, "libs", "*")
	format := exec.CommandContext(ctx, java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
		"-Dlog4j2.configurationFile="+filepath.Join(home, "log4j2-tools.properties"), "-cp", cp,
		"kafka.tools.StorageTool", "format", "-t", "4L6g3nShT-eMCtK--X86sw", "-c", propsPath)
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kafka storage format: %w\n%s", err, out)
	}
	k.proc = &faultProc{name: "kafka", bin: java, logPath: filepath.Join(dir, "stdout.log"),
		args: []string{"-Xms256m", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
			"-Dkafka.logs.dir=" + dir, "-Dlog4j2.configurationFile=" + filepath.Join(dir, "log4j2.properties"),
			"-cp", cp, "kafka.Kafka", propsPath}}
	if err := k.up(ctx); err != nil {
		k.proc.kill()
		return nil, err
	}
	return k, nil
}

func (k *jvmKafka) Addr() string { return fmt.Sprintf("127.0.0.1:%d", k.port) }

// up starts the JVM and waits until the broker answers.
func (k *jvmKafka) up(ctx context.Context) error {
	if err := k.proc.start(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if !k.proc.running() || time.Now().After(deadline) {
			return fmt.Errorf("kafka did not come up (%v); see %s", err, filepath.Join(k.dir, "server.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Restart kills the JVM with SIGKILL, so the broker recovers its logs as
// after a crash.
func (k *jvmKafka) Restart(ctx context.Context, pause time.Duration) error {
	k.proc.kill()
	time.Sleep(pause)
	return k.up(ctx)
}

// Close kills the broker: its data is the test's and goes with it.
func (k *jvmKafka) Close() { k.proc.kill() }

// faultStack is a running product for the fault suite: a broker, the
// processes of its roles on one data directory (embedded stores), and the
// stores opened in the test process to check what the processes did.
type faultStack struct {
	t       *testing.T
	name    string
	bin     string
	dir     string // the data directory
	cfgPath string
	broker  faultBroker
	st      *app.Stores
	procs   map[string]*faultProc
	// webURL and token reach the web API, when the stack runs one.
	webURL, token string

	contacts []demo.Contact
	initial  map[string]locate.Remaining
	// touched are contacts some request named, accepted or not: only the
	// others must keep everything.
	touched map[string]bool
	next    int // contacts[next:] are untouched
}

// faultConfig writes the configuration every process of a stack reads;
// extra adds to it.
func faultConfig(t *testing.T, dir, broker string, httpPort int, token string, extra map[string]any) string {
	t.Helper()
	sum := sha256.Sum256([]byte(token))
	cfg := map[string]any{
		"data_dir":   filepath.Join(dir, "data"),
		"http_addr":  fmt.Sprintf("127.0.0.1:%d", httpPort),
		"partitions": 3,
		"deadline":   "8s",
		"kafka":      map[string]any{"brokers": []string{broker}},
		"web":        map[string]any{"api_tokens": []map[string]any{{"name": "fault-suite", "token_sha256": hex.EncodeToString(sum[:]), "roles": []string{"dpo"}}}},
	}
	maps.Copy(cfg, extra)
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "erasure.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newServeStack seeds contacts into a new data directory and starts roles,
// each a `serve` process of its own named by its key, on broker; config adds
// to the stack's configuration.
func newServeStack(t *testing.T, name, bin string, broker faultBroker, contacts int, seed uint64, roles map[string]string, config map[string]any) *faultStack {
	t.Helper()
	dir := t.TempDir()
	s := &faultStack{t: t, name: name, bin: bin, dir: filepath.Join(dir, "data"), broker: broker, procs: map[string]*faultProc{},
		token: "fault-suite-token-" + name, touched: map[string]bool{}}
	httpPort := freePort(t)
	s.cfgPath = faultConfig(t, dir, broker.Addr(), httpPort, s.token, config)
	s.webURL = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	cfg, err := app.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The processes share the keys; each would otherwise make its own.
	if _, _, err := app.InitKeys(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	st, closeStores, err := app.OpenStores(t.Context(), cfg, app.Prepare(func(ctx context.Context, st *app.Stores) error {
		var err error
		s.contacts, err = demo.Seed(ctx, st.Demo(), demo.Options{Contacts: contacts, Seed: seed})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeStores)
	s.st = st
	for proc, role := range roles {
		s.addServe(proc, role, true)
	}
	t.Cleanup(s.stopAll)
	for _, p := range s.procs {
		if err := p.waitReady(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	s.snapshot()
	return s
}

// addServe starts `erasure serve --roles role` as proc; static members
// restart into their partitions at once.
func (s *faultStack) addServe(proc, role string, static bool) *faultProc {
	s.t.Helper()
	p := &faultProc{name: proc, bin: s.bin, args: []string{"serve", "--config", s.cfgPath, "--roles", role},
		ready: "msg=serving", logPath: filepath.Join(filepath.Dir(s.dir), proc+".log")}
	if static {
		p.env = []string{"ERASURE_KAFKA_INSTANCE_ID=" + s.name + "-" + proc}
	}
	if err := p.start(); err != nil {
		s.t.Fatal(err)
	}
	s.procs[proc] = p
	return p
}

func (s *faultStack) stopAll() {
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(p.stop)
	}
	wg.Wait()
	s.t.Logf("%s: processes stopped in %s", s.name, time.Since(start).Round(time.Millisecond))
}

// snapshot records every contact's artefacts before anything is deleted.
func (s *faultStack) snapshot() {
	s.t.Helper()
	s.initial = map[string]locate.Remaining{}
	for _, c := range s.contacts {
		r, err := s.st.Locator.Remaining(s.t.Context(), c.ID)
		if err != nil {
			s.t.Fatal(err)
		}
		if r.Total() == 0 {
			s.t.Fatalf("seeded contact %s holds nothing", c.ID)
		}
		s.initial[c.ID] = r
	}
}

// take returns n contacts no request has named yet.
func (s *faultStack) take(n int) []string {
	s.t.Helper()
	if s.next+n > len(s.contacts) {
		s.t.Fatalf("%s: out of untouched contacts (%d seeded)", s.name, len(s.contacts))
	}
	var ids []string
	for _, c := range s.contacts[s.next : s.next+n] {
		ids = append(ids, c.ID)
	}
	s.next += n
	return ids
}

// restart kills a process with SIGKILL, waits pause and starts it again.
func (s *faultStack) restart(proc string, pause time.Duration) {
	s.t.Helper()
	p := s.procs[proc]
	p.kill()
	time.Sleep(pause)
	if err := p.start(); err != nil {
		s.t.Fatal(err)
	}
}

// outage makes one of the embedded SQLite stores refuse every write for d:
// the test holds its write lock (BEGIN IMMEDIATE) from a connection of its
// own, so the processes' writes wait out their busy timeout and fail as
// retryable, as against a store that is down; reads still work (WAL).
func (s *faultStack) outage(ctx context.Context, db string, d time.Duration) (release func(), err error) {
	conn, err := sqlite.Open(ctx, filepath.Join(s.dir, db))
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	// One write takes the lock for certain, whatever the driver defers.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS fault_outage (x INTEGER)`); err != nil {
		tx.Rollback()
		conn.Close()
		return nil, err
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback()
			conn.Close()
		})
	}
	time.AfterFunc(d, release)
	return release, nil
}

// faultErr reports whether err is a test-side problem worth retrying
// (the web API being restarted, say) rather than a finding.
func faultErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, stores.ErrRetryable)
}
