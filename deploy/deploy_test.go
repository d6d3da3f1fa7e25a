// Package deploy holds the container image, the compose stack and the
// Kubernetes manifests of erasure. Its test validates them without a
// container engine or a cluster.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// roles is every production role of `erasure serve`.
var roles = []string{
	"webapi",
	"aggregator",
	"consumer:data-warehouse",
	"consumer:email-webform",
	"consumer:voice",
	"consumer:messaging",
	"consumer:social",
	"consumer:contact-search",
}

// configKeys is every key of the example erasure.yaml, as dotted paths of
// leaves (lists are leaves).
var configKeys = []string{
	"http_addr",
	"events.keys",
	"receipts.key_file",
	"topic_prefix",
	"partitions",
	"replication",
	"deadline",
	"kafka.brokers",
	"index.kind",
	"index.opensearch.urls",
	"index.opensearch.user",
	"objects.kind",
	"objects.s3.endpoint",
	"objects.s3.region",
	"objects.s3.path_style",
	"objects.s3.access_key",
	"warehouse.kind",
	"warehouse.clickhouse.addr",
	"warehouse.clickhouse.database",
	"warehouse.clickhouse.user",
	"ledger.kind",
	"web.secure_cookies",
	"web.users",
	"web.api_tokens",
}

// secretEnv is what the pods may get from the Secret: the passwords erasure
// reads from the environment, and the standard AWS credentials.
var secretEnv = regexp.MustCompile(`^(ERASURE_KAFKA_SASL_PASSWORD|ERASURE_OPENSEARCH_PASSWORD|ERASURE_S3_SECRET_KEY|ERASURE_CLICKHOUSE_PASSWORD|AWS_[A-Z_]+)$`)

var infra = []string{"kafka", "opensearch", "clickhouse", "minio"}

const configPath = "/etc/erasure/erasure.yaml"

type obj = map[string]any

// doc is one YAML document of a file.
type doc struct {
	file string
	idx  int
	v    obj
}

func (d doc) String() string { return fmt.Sprintf("%s#%d", d.file, d.idx) }

// parseDocs decodes every document of a YAML stream into maps.
func parseDocs(raw []byte) ([]obj, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out []obj
	for {
		var v obj
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v)
		}
	}
}

func loadDir(t *testing.T, dir string) []doc {
	t.Helper()
	var docs []doc
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		vs, err := parseDocs(raw)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		if len(vs) == 0 {
			t.Errorf("%s: no YAML document", path)
		}
		for i, v := range vs {
			docs = append(docs, doc{file: filepath.ToSlash(path), idx: i, v: v})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML files", dir)
	}
	return docs
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(obj)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case uint64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	}
	return 0, false
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// leafKeys lists the dotted paths of every leaf of a map.
func leafKeys(prefix string, m obj) []string {
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(obj); ok {
			out = append(out, leafKeys(p, sub)...)
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// checkConfig validates an example erasure.yaml and returns its partitions.
func checkConfig(t *testing.T, name string, raw []byte) int {
	t.Helper()
	docs, err := parseDocs(raw)
	if err != nil || len(docs) != 1 {
		t.Fatalf("%s: want one YAML document: %v", name, err)
	}
	c := docs[0]
	want := slices.Sorted(slices.Values(configKeys))
	if got := leafKeys("", c); !slices.Equal(got, want) {
		t.Errorf("%s: keys\n got  %v\n want %v", name, got, want)
	}
	for _, k := range []string{"http_addr", "topic_prefix", "deadline", "index.kind", "objects.kind", "warehouse.kind"} {
		if _, ok := get(c, anyPath(k)...).(string); !ok {
			t.Errorf("%s: %s is not a string", name, k)
		}
	}
	for k, want := range map[string]string{"index.kind": "opensearch", "objects.kind": "s3", "warehouse.kind": "clickhouse", "http_addr": "0.0.0.0:8080"} {
		if got := str(c, anyPath(k)...); got != want {
			t.Errorf("%s: %s = %q, want %q", name, k, got, want)
		}
	}
	if d, err := time.ParseDuration(str(c, "deadline")); err != nil || d <= 0 {
		t.Errorf("%s: deadline %q: %v", name, str(c, "deadline"), err)
	}
	partitions, ok := toInt(get(c, "partitions"))
	if !ok || partitions < 1 {
		t.Errorf("%s: partitions %v, want a positive integer", name, get(c, "partitions"))
	}
	if r, ok := toInt(get(c, "replication")); !ok || r < 1 {
		t.Errorf("%s: replication %v, want a positive integer", name, get(c, "replication"))
	}
	if _, ok := get(c, "objects", "s3", "path_style").(bool); !ok {
		t.Errorf("%s: objects.s3.path_style is not a bool", name)
	}
	if _, ok := get(c, "web", "secure_cookies").(bool); !ok {
		t.Errorf("%s: web.secure_cookies is not a bool", name)
	}
	for _, k := range []string{"kafka.brokers", "index.opensearch.urls", "warehouse.clickhouse.addr"} {
		if l := strs(get(c, anyPath(k)...)); len(l) == 0 {
			t.Errorf("%s: %s is empty", name, k)
		}
	}
	for _, k := range []string{"web.users", "web.api_tokens"} {
		if _, ok := get(c, anyPath(k)...).([]any); !ok {
			t.Errorf("%s: %s is not a list", name, k)
		}
	}
	// Secrets come from the environment, never from the file.
	for _, k := range leafKeys("", c) {
		if strings.Contains(k, "password") || strings.Contains(k, "secret") {
			t.Errorf("%s: %s holds a secret; it belongs in the environment", name, k)
		}
	}
	return partitions
}

func anyPath(dotted string) []any {
	var out []any
	for _, p := range strings.Split(dotted, ".") {
		out = append(out, p)
	}
	return out
}

func roleFromArgs(args []string) (string, error) {
	if len(args) == 0 || args[0] != "serve" {
		return "", fmt.Errorf("command %q does not start with serve", args)
	}
	var role, config string
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "--roles":
			role = args[i+1]
		case "--config":
			config = args[i+1]
		}
	}
	if config != configPath {
		return "", fmt.Errorf("command %q: want --config %s", args, configPath)
	}
	if role == "" || strings.Contains(role, ",") || role == "all" {
		return "", fmt.Errorf("command %q: want exactly one role", args)
	}
	return role, nil
}

// ---------------------------------------------------------------- Dockerfile

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var froms, runs []string
	var expose, entrypoint, user string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "RUN":
			runs = append(runs, rest)
		case "EXPOSE":
			expose = rest
		case "ENTRYPOINT":
			entrypoint = rest
		case "USER":
			user = rest
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %q", froms)
	}
	if !strings.HasPrefix(froms[0], "golang:1.26 ") && froms[0] != "golang:1.26" {
		t.Errorf("build stage FROM %q, want golang:1.26", froms[0])
	}
	if last := froms[len(froms)-1]; last != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", last)
	}
	built := false
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-o /erasure", "./cmd/erasure"} {
				if !strings.Contains(r, want) {
					t.Errorf("go build step %q lacks %q", r, want)
				}
			}
		}
	}
	if !built {
		t.Error("no RUN step runs go build")
	}
	if expose != "8080" {
		t.Errorf("EXPOSE %q, want 8080", expose)
	}
	if entrypoint != `["/erasure"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/erasure\"]", entrypoint)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(user) {
		t.Errorf("USER %q: want a numeric non-root user (runAsNonRoot can only verify a numeric one)", user)
	}

	// .dockerignore keeps the build context small but never hides what the
	// build needs.
	di, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns := map[string]bool{}
	for _, l := range strings.Split(string(di), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns[strings.TrimPrefix(l, "/")] = true
		}
	}
	if !patterns[".git"] {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "cmd/erasure", "schemas", "stores", "webapi", "consumers", "producers", "deploy", "deploy/Dockerfile", "*", "**", "*.go", "**/*.go"} {
		if patterns[need] {
			t.Errorf(".dockerignore excludes %q, which the build needs", need)
		}
	}
}

// ---------------------------------------------------------------- compose

func TestCompose(t *testing.T) {
	rawCfg, err := os.ReadFile("compose/erasure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	partitions := checkConfig(t, "compose/erasure.yaml", rawCfg)

	raw, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := parseDocs(raw)
	if err != nil || len(docs) != 1 {
		t.Fatalf("compose.yaml: want one document: %v", err)
	}
	services, _ := docs[0]["services"].(obj)
	if len(services) == 0 {
		t.Fatal("compose.yaml: no services")
	}

	for _, name := range infra {
		s, ok := services[name].(obj)
		if !ok {
			t.Errorf("compose: no %s service", name)
			continue
		}
		if len(strs(get(s, "healthcheck", "test"))) == 0 {
			t.Errorf("compose: %s has no healthcheck", name)
		}
		if str(s, "image") == "" {
			t.Errorf("compose: %s has no image", name)
		}
	}
	for want, prefix := range map[string]string{"kafka": "apache/kafka:4.1.", "opensearch": "opensearchproject/opensearch:2.19", "clickhouse": "clickhouse/clickhouse-server", "minio": "minio/minio"} {
		if img := str(services[want], "image"); !strings.Contains(img, prefix) {
			t.Errorf("compose: %s image %q, want %s...", want, img, prefix)
		}
	}

	// Every published port binds the loopback address only.
	for name, s := range services {
		for _, p := range list(s, "ports") {
			switch p := p.(type) {
			case string:
				if !strings.HasPrefix(p, "127.0.0.1:") || strings.Count(p, ":") != 2 {
					t.Errorf("compose: %s publishes %q: want 127.0.0.1:HOST:CONTAINER", name, p)
				}
			case obj:
				if str(p, "host_ip") != "127.0.0.1" {
					t.Errorf("compose: %s publishes %v without host_ip 127.0.0.1", name, p)
				}
			default:
				t.Errorf("compose: %s publishes %v (%T): want 127.0.0.1:HOST:CONTAINER", name, p, p)
			}
		}
	}

	byRole := map[string]string{}
	for name, s := range services {
		cmd := strs(get(s, "command"))
		if len(cmd) == 0 || cmd[0] != "serve" {
			continue
		}
		role, err := roleFromArgs(cmd)
		if err != nil {
			t.Errorf("compose: %s: %v", name, err)
			continue
		}
		if prev, dup := byRole[role]; dup {
			t.Errorf("compose: role %s in both %s and %s", role, prev, name)
		}
		byRole[role] = name

		if got := str(s, "build", "dockerfile"); got != "deploy/Dockerfile" {
			t.Errorf("compose: %s builds %q, want deploy/Dockerfile", name, got)
		}
		ctx := filepath.Join("compose", str(s, "build", "context"))
		if fi, err := os.Stat(filepath.Join(ctx, "deploy", "Dockerfile")); err != nil || fi.IsDir() {
			t.Errorf("compose: %s build context %q does not hold deploy/Dockerfile", name, ctx)
		}
		if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
			t.Errorf("compose: %s build context %q is not the module root", name, ctx)
		}
		for _, dep := range infra {
			if c := str(s, "depends_on", dep, "condition"); c != "service_healthy" {
				t.Errorf("compose: %s depends_on %s condition %q, want service_healthy", name, dep, c)
			}
		}
		mounted := false
		for _, v := range strs(get(s, "volumes")) {
			if v == "./erasure.yaml:"+configPath+":ro" {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("compose: %s does not mount ./erasure.yaml read-only at %s", name, configPath)
		}
		env, _ := get(s, "environment").(obj)
		for k, v := range env {
			if secretEnv.MatchString(k) {
				if sv, _ := v.(string); !strings.HasPrefix(sv, "${") {
					t.Errorf("compose: %s sets %s to a literal; secrets come from the environment", name, k)
				}
			}
		}
		if get(s, "environment", "ERASURE_S3_SECRET_KEY") == nil || get(s, "environment", "ERASURE_CLICKHOUSE_PASSWORD") == nil {
			t.Errorf("compose: %s lacks the S3 or ClickHouse secret", name)
		}
		replicas := 1
		if r := get(s, "deploy", "replicas"); r != nil {
			replicas, _ = toInt(r)
		}
		if strings.HasPrefix(role, "consumer:") && replicas > partitions {
			t.Errorf("compose: %s has %d replicas, more than the %d partitions", name, replicas, partitions)
		}
		if role == "aggregator" {
			if r, ok := toInt(get(s, "deploy", "replicas")); !ok || r != 1 {
				t.Errorf("compose: aggregator deploy.replicas %v, want exactly 1", get(s, "deploy", "replicas"))
			}
		}
		if role == "webapi" {
			if p := strs(get(s, "ports")); !slices.Contains(p, "127.0.0.1:8080:8080") {
				t.Errorf("compose: webapi ports %v, want 127.0.0.1:8080:8080", p)
			}
		} else if len(list(s, "ports")) > 0 {
			t.Errorf("compose: %s publishes ports; only webapi serves HTTP", name)
		}
	}
	gotRoles := slices.Sorted(func(yield func(string) bool) {
		for r := range byRole {
			if !yield(r) {
				return
			}
		}
	})
	if want := slices.Sorted(slices.Values(roles)); !slices.Equal(gotRoles, want) {
		t.Errorf("compose: roles\n got  %v\n want %v", gotRoles, want)
	}

	composeCLI(t)
}

// composeCLI runs `docker compose config -q` when the compose plugin is
// installed: an extra check on top of the ones above.
func composeCLI(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Log("docker CLI absent: skipping `docker compose config -q`")
		return
	}
	if out, err := exec.Command("docker", "compose", "version").CombinedOutput(); err != nil {
		t.Logf("docker compose CLI plugin absent (%v: %s): skipping `docker compose config -q`", err, bytes.TrimSpace(out))
		return
	}
	cmd := exec.Command("docker", "compose", "-f", "deploy/compose/compose.yaml", "config", "-q")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config -q: %v\n%s", err, out)
	}
}

// ---------------------------------------------------------------- Kubernetes

func TestKubernetes(t *testing.T) {
	docs := loadDir(t, "kubernetes")
	byKind := map[string][]doc{}
	var kustomization obj
	for _, d := range docs {
		kind := str(d.v, "kind")
		if kind == "" || str(d.v, "apiVersion") == "" {
			t.Errorf("%s: no kind or apiVersion", d)
			continue
		}
		if kind == "Kustomization" {
			kustomization = d.v
			continue
		}
		if str(d.v, "metadata", "name") == "" {
			t.Errorf("%s: %s without metadata.name", d, kind)
		}
		if kind != "Namespace" && str(d.v, "metadata", "namespace") != "erasure" {
			t.Errorf("%s: %s %s not in namespace erasure", d, kind, str(d.v, "metadata", "name"))
		}
		byKind[kind] = append(byKind[kind], d)
	}

	// kustomization.yaml lists every manifest but the example Secret and the
	// optional autoscalers, which it mentions.
	if kustomization == nil {
		t.Fatal("kubernetes/kustomization.yaml missing")
	}
	if str(kustomization, "namespace") != "erasure" {
		t.Error("kustomization: namespace is not erasure")
	}
	kraw, _ := os.ReadFile("kubernetes/kustomization.yaml")
	optional := map[string]bool{"secret.example.yaml": true, "consumers-hpa.yaml": true}
	listed := map[string]bool{}
	for _, r := range strs(get(kustomization, "resources")) {
		listed[r] = true
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
		if optional[r] && r == "secret.example.yaml" {
			t.Error("kustomization lists the example Secret; its placeholders must never be applied")
		}
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		switch {
		case base == "kustomization.yaml":
		case optional[base]:
			if !bytes.Contains(kraw, []byte(base)) {
				t.Errorf("kustomization.yaml does not mention the optional %s", base)
			}
		case !listed[base]:
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}
	if len(byKind["Namespace"]) != 1 || str(byKind["Namespace"][0].v, "metadata", "name") != "erasure" {
		t.Error("want one Namespace erasure")
	}

	// The ConfigMap carries the example erasure.yaml.
	var partitions int
	if cms := byKind["ConfigMap"]; len(cms) != 1 || str(cms[0].v, "metadata", "name") != "erasure-config" {
		t.Fatal("want one ConfigMap erasure-config")
	} else {
		cfg := str(cms[0].v, "data", "erasure.yaml")
		if cfg == "" {
			t.Fatal("ConfigMap erasure-config has no erasure.yaml")
		}
		partitions = checkConfig(t, "configmap.yaml erasure.yaml", []byte(cfg))
	}

	// The example Secret holds placeholders only, for the environment variables
	// erasure reads secrets from.
	secretKeys := map[string]bool{}
	secretName := ""
	for _, d := range byKind["Secret"] {
		if filepath.Base(d.file) != "secret.example.yaml" {
			t.Errorf("%s: a Secret outside secret.example.yaml", d)
			continue
		}
		secretName = str(d.v, "metadata", "name")
		data, _ := get(d.v, "stringData").(obj)
		for k, v := range data {
			secretKeys[k] = true
			if !secretEnv.MatchString(k) {
				t.Errorf("%s: key %s is no secret erasure reads", d, k)
			}
			if s, _ := v.(string); !strings.HasPrefix(s, "REPLACE_ME") {
				t.Errorf("%s: %s = %q is not a REPLACE_ME placeholder", d, k, s)
			}
		}
		if get(d.v, "data") != nil {
			t.Errorf("%s: use stringData placeholders, not data", d)
		}
	}
	for _, k := range []string{"ERASURE_KAFKA_SASL_PASSWORD", "ERASURE_OPENSEARCH_PASSWORD", "ERASURE_S3_SECRET_KEY", "ERASURE_CLICKHOUSE_PASSWORD"} {
		if !secretKeys[k] {
			t.Errorf("secret.example.yaml lacks %s", k)
		}
	}
	sraw, _ := os.ReadFile("kubernetes/secret.example.yaml")
	if !bytes.Contains(sraw, []byte("EXAMPLE ONLY")) {
		t.Error("secret.example.yaml is not marked EXAMPLE ONLY")
	}

	type deployment struct {
		d        doc
		role     string
		replicas int
		labels   obj
	}
	deployments := map[string]deployment{}
	for _, d := range byKind["Deployment"] {
		name := str(d.v, "metadata", "name")
		pod := get(d.v, "spec", "template")
		containers := list(pod, "spec", "containers")
		if len(containers) != 1 {
			t.Errorf("%s: want one container, got %d", name, len(containers))
			continue
		}
		c := containers[0]
		role, err := roleFromArgs(append(strs(get(c, "command")), strs(get(c, "args"))...))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if prev, dup := deployments[role]; dup {
			t.Errorf("role %s in two Deployments: %s and %s", role, str(prev.d.v, "metadata", "name"), name)
		}
		replicas, ok := toInt(get(d.v, "spec", "replicas"))
		if !ok {
			t.Errorf("%s: spec.replicas not set", name)
		}
		labels, _ := get(pod, "metadata", "labels").(obj)
		deployments[role] = deployment{d: d, role: role, replicas: replicas, labels: labels}

		if str(c, "image") != "erasure" {
			t.Errorf("%s: image %q, want erasure (set by kustomization images)", name, str(c, "image"))
		}
		if !selects(get(d.v, "spec", "selector", "matchLabels"), labels) {
			t.Errorf("%s: selector does not match its pod labels", name)
		}
		for _, res := range []string{"requests", "limits"} {
			for _, r := range []string{"cpu", "memory"} {
				if get(c, "resources", res, r) == nil {
					t.Errorf("%s: no resources.%s.%s", name, res, r)
				}
			}
		}
		if get(pod, "spec", "securityContext", "runAsNonRoot") != true && get(c, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: runAsNonRoot is not true", name)
		}
		if get(c, "securityContext", "readOnlyRootFilesystem") != true {
			t.Errorf("%s: readOnlyRootFilesystem is not true", name)
		}
		if get(c, "securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("%s: allowPrivilegeEscalation is not false", name)
		}
		if !slices.Contains(strs(get(c, "securityContext", "capabilities", "drop")), "ALL") {
			t.Errorf("%s: capabilities do not drop ALL", name)
		}
		// The config file comes from the ConfigMap; the data dir is writable.
		mounts := map[string]string{}
		for _, m := range list(c, "volumeMounts") {
			mounts[str(m, "mountPath")] = str(m, "name")
		}
		volumes := map[string]any{}
		for _, v := range list(pod, "spec", "volumes") {
			volumes[str(v, "name")] = v
		}
		if v := volumes[mounts[filepath.Dir(configPath)]]; str(v, "configMap", "name") != "erasure-config" {
			t.Errorf("%s: %s is not the ConfigMap erasure-config", name, filepath.Dir(configPath))
		}
		dataDir := ""
		for _, e := range list(c, "env") {
			if str(e, "name") == "ERASURE_DATA_DIR" {
				dataDir = str(e, "value")
			}
		}
		if v := volumes[mounts[dataDir]]; dataDir == "" || get(v, "emptyDir") == nil {
			t.Errorf("%s: ERASURE_DATA_DIR %q is not a mounted emptyDir (the root filesystem is read-only)", name, dataDir)
		}
		refs := 0
		for _, e := range list(c, "envFrom") {
			if n := str(e, "secretRef", "name"); n != "" {
				refs++
				if n != secretName {
					t.Errorf("%s: envFrom Secret %q, the example is %q", name, n, secretName)
				}
			}
		}
		for _, e := range list(c, "env") {
			if n := str(e, "valueFrom", "secretKeyRef", "name"); n != "" {
				refs++
				if n != secretName || !secretKeys[str(e, "valueFrom", "secretKeyRef", "key")] {
					t.Errorf("%s: env %s refers to a Secret key the example lacks", name, str(e, "name"))
				}
			}
		}
		if refs == 0 {
			t.Errorf("%s: gets no secrets", name)
		}

		probes := 0
		for _, p := range []string{"readinessProbe", "livenessProbe"} {
			if get(c, p) != nil {
				probes++
			}
		}
		annotations, _ := get(pod, "metadata", "annotations").(obj)
		if role == "webapi" {
			port := 0
			for _, p := range list(c, "ports") {
				if str(p, "name") == "http" {
					port, _ = toInt(get(p, "containerPort"))
				}
			}
			if port != 8080 {
				t.Errorf("%s: no container port http 8080", name)
			}
			for _, p := range []string{"readinessProbe", "livenessProbe"} {
				pp := str(c, p, "httpGet", "port")
				if n, ok := toInt(get(c, p, "httpGet", "port")); ok && n == 8080 {
					pp = "http"
				}
				if str(c, p, "httpGet", "path") != "/healthz" || pp != "http" {
					t.Errorf("%s: %s is not GET /healthz on 8080", name, p)
				}
			}
			// /metrics stays off the user-facing port.
			addr, mport := "", 0
			for _, e := range list(c, "env") {
				if str(e, "name") == "ERASURE_METRICS_ADDR" {
					addr = str(e, "value")
				}
			}
			for _, p := range list(c, "ports") {
				if str(p, "name") == "metrics" {
					mport, _ = toInt(get(p, "containerPort"))
				}
			}
			if addr != "0.0.0.0:9090" || mport != 9090 {
				t.Errorf("%s: metrics address %q and port %d, want 0.0.0.0:9090 and 9090", name, addr, mport)
			}
			if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != "9090" || annotations["prometheus.io/path"] != "/metrics" {
				t.Errorf("%s: Prometheus annotations %v, want scrape true, port 9090, path /metrics", name, annotations)
			}
		} else {
			// The other roles serve /metrics and /healthz on the metrics
			// address, which the env var sets.
			addr := ""
			for _, e := range list(c, "env") {
				if str(e, "name") == "ERASURE_METRICS_ADDR" {
					addr = str(e, "value")
				}
			}
			port := 0
			for _, p := range list(c, "ports") {
				if str(p, "name") == "metrics" {
					port, _ = toInt(get(p, "containerPort"))
				}
			}
			if addr != "0.0.0.0:9090" || port != 9090 {
				t.Errorf("%s: metrics address %q and port %d, want 0.0.0.0:9090 and 9090", name, addr, port)
			}
			for _, p := range []string{"readinessProbe", "livenessProbe"} {
				if str(c, p, "httpGet", "path") != "/healthz" || str(c, p, "httpGet", "port") != "metrics" {
					t.Errorf("%s: %s is not GET /healthz on the metrics port", name, p)
				}
			}
			if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != "9090" || annotations["prometheus.io/path"] != "/metrics" {
				t.Errorf("%s: Prometheus annotations %v, want scrape true, port 9090, path /metrics", name, annotations)
			}
		}
	}
	gotRoles := slices.Sorted(func(yield func(string) bool) {
		for r := range deployments {
			if !yield(r) {
				return
			}
		}
	})
	if want := slices.Sorted(slices.Values(roles)); !slices.Equal(gotRoles, want) {
		t.Errorf("Deployment roles\n got  %v\n want %v", gotRoles, want)
	}

	if agg, ok := deployments["aggregator"]; ok {
		if agg.replicas != 1 {
			t.Errorf("aggregator replicas %d, want 1 (single writer of the audit hash chain)", agg.replicas)
		}
		if s := str(agg.d.v, "spec", "strategy", "type"); s != "Recreate" {
			t.Errorf("aggregator strategy %q, want Recreate", s)
		}
	}

	// Data-lake rewrites have one writer: two processes rewriting the same
	// file could restore each other's deleted records.
	if dw, ok := deployments["consumer:data-warehouse"]; ok {
		if dw.replicas != 1 || str(dw.d.v, "spec", "strategy", "type") != "Recreate" {
			t.Errorf("data-warehouse consumer: replicas %d strategy %q, want 1 and Recreate", dw.replicas, str(dw.d.v, "spec", "strategy", "type"))
		}
	}

	// The webapi Service reaches the webapi pods on 8080.
	if web, ok := deployments["webapi"]; ok {
		found := false
		for _, s := range byKind["Service"] {
			if !selects(get(s.v, "spec", "selector"), web.labels) {
				continue
			}
			found = true
			for _, p := range list(s.v, "spec", "ports") {
				tp := str(p, "targetPort")
				if n, ok := toInt(get(p, "targetPort")); ok && n == 8080 {
					tp = "http"
				}
				if tp != "http" {
					t.Errorf("%s: targetPort %v, want http (8080)", s, get(p, "targetPort"))
				}
			}
		}
		if !found {
			t.Error("no Service selects the webapi pods")
		}
	}

	// Consumers: at most one pod per partition, a PodDisruptionBudget each,
	// and any autoscaler capped at the partition count.
	for _, role := range roles {
		dep, ok := deployments[role]
		if !ok || !strings.HasPrefix(role, "consumer:") {
			continue
		}
		name := str(dep.d.v, "metadata", "name")
		if dep.replicas < 1 || dep.replicas > partitions {
			t.Errorf("%s: replicas %d, want 1..%d (the partition count)", name, dep.replicas, partitions)
		}
		pdbs := 0
		for _, p := range byKind["PodDisruptionBudget"] {
			if selects(get(p.v, "spec", "selector", "matchLabels"), dep.labels) {
				pdbs++
			}
		}
		if pdbs != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select it, want 1", name, pdbs)
		}
	}
	for _, p := range byKind["PodDisruptionBudget"] {
		if selects(get(p.v, "spec", "selector", "matchLabels"), deployments["aggregator"].labels) {
			t.Errorf("%s: a PodDisruptionBudget on the single aggregator would block node drains", p)
		}
	}
	for _, h := range byKind["HorizontalPodAutoscaler"] {
		target := str(h.v, "spec", "scaleTargetRef", "name")
		isConsumer := false
		for role, dep := range deployments {
			if str(dep.d.v, "metadata", "name") == target {
				isConsumer = strings.HasPrefix(role, "consumer:")
			}
		}
		if !isConsumer {
			t.Errorf("%s: scales %q, which is no consumer Deployment", h, target)
		}
		if target == "erasure-consumer-data-warehouse" {
			t.Errorf("%s: the data-warehouse consumer must stay at one replica", h)
		}
		max, _ := toInt(get(h.v, "spec", "maxReplicas"))
		min, _ := toInt(get(h.v, "spec", "minReplicas"))
		if max < 1 || max > partitions || min > max {
			t.Errorf("%s: replicas %d..%d, want at most the %d partitions", h, min, max, partitions)
		}
	}

	kustomizeCLI(t)
}

// selects reports whether every label of the selector is on the pod.
func selects(selector any, labels obj) bool {
	sel, _ := selector.(obj)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// kustomizeCLI renders the kustomization with kubectl when it is installed
// (no cluster needed): an extra check on top of the ones above.
func kustomizeCLI(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Log("kubectl absent: skipping `kubectl kustomize`")
		return
	}
	out, err := exec.Command("kubectl", "kustomize", "kubernetes").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("kubectl kustomize kubernetes: %v\n%s", err, ee.Stderr)
		} else {
			t.Errorf("kubectl kustomize kubernetes: %v", err)
		}
		return
	}
	docs, err := parseDocs(out)
	if err != nil {
		t.Fatalf("kubectl kustomize output: %v", err)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[str(d, "kind")]++
		if str(d, "kind") == "Secret" {
			t.Error("the rendered kustomization holds a Secret")
		}
		if str(d, "kind") == "Deployment" {
			img := str(d, "spec", "template", "spec", "containers", 0, "image")
			if img == "erasure" || img == "" {
				t.Errorf("rendered Deployment %s: image %q not set by kustomization", str(d, "metadata", "name"), img)
			}
		}
	}
	if kinds["Deployment"] != len(roles) {
		t.Errorf("rendered kustomization: %d Deployments, want %d", kinds["Deployment"], len(roles))
	}
}
