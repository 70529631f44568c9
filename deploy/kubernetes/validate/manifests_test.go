// Package validate checks the Kubernetes manifests of deploy/kubernetes
// without a cluster: every document decodes strictly (no unknown field, no
// wrong type) into the Kubernetes API types of k8s.io/api, and the
// references between them hold — selectors select, named ports exist,
// volumes are declared, $(VAR) references are declared variables, the
// attackers are an Indexed Job whose share comes from JOB_COMPLETION_INDEX,
// the merge reads every share, every image has a Dockerfile. It is a
// module of its own so that the Kubernetes API types are not a dependency
// of cellbench itself.
package validate

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"cellbench/config"
)

// repoRoot is the cellbench repository, three levels up.
const repoRoot = "../../.."

// manifests are the decoded documents of one file.
type manifests struct {
	configMaps  map[string]*corev1.ConfigMap
	services    map[string]*corev1.Service
	claims      map[string]*corev1.PersistentVolumeClaim
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
}

// decode splits a multi-document file and decodes each document strictly
// into the type its apiVersion and kind name.
func decode(t *testing.T, doc []byte) *manifests {
	t.Helper()
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{},
		claims: map[string]*corev1.PersistentVolumeClaim{}, deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{}}
	for i, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(doc), -1) {
		if strings.TrimSpace(stripComments(part)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(part), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj metav1.Object
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, m.configMaps[name(t, part, o)] = o, o
		case "v1 Service":
			o := &corev1.Service{}
			obj, m.services[name(t, part, o)] = o, o
		case "v1 PersistentVolumeClaim":
			o := &corev1.PersistentVolumeClaim{}
			obj, m.claims[name(t, part, o)] = o, o
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			obj, m.deployments[name(t, part, o)] = o, o
		case "batch/v1 Job":
			o := &batchv1.Job{}
			obj, m.jobs[name(t, part, o)] = o, o
		default:
			t.Fatalf("document %d: %s %s is not a kind the manifests use", i, tm.APIVersion, tm.Kind)
		}
		if errs := validation.IsDNS1123Label(obj.GetName()); len(errs) > 0 {
			t.Errorf("%s %q: %s", tm.Kind, obj.GetName(), strings.Join(errs, "; "))
		}
	}
	return m
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// name decodes doc strictly into o and returns its name.
func name(t *testing.T, doc string, o metav1.Object) string {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
		t.Fatalf("strict decode: %v\n%.400s", err, doc)
	}
	if o.GetName() == "" {
		t.Fatalf("a document without metadata.name:\n%.400s", doc)
	}
	return o.GetName()
}

// pod is a pod template with where it came from.
type pod struct {
	owner string
	tmpl  *corev1.PodTemplateSpec
}

func (m *manifests) pods() []pod {
	var out []pod
	for n, d := range m.deployments {
		out = append(out, pod{"Deployment " + n, &d.Spec.Template})
	}
	for n, j := range m.jobs {
		out = append(out, pod{"Job " + n, &j.Spec.Template})
	}
	return out
}

// check is every rule of the package comment on one set of manifests of
// workers attackers.
func check(t *testing.T, m *manifests, workers int) {
	t.Helper()
	for n, d := range m.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: its selector %v does not select its pods (%v)", n, d.Spec.Selector, err)
		}
	}
	for _, p := range m.pods() {
		checkPod(t, m, p)
	}
	for n, s := range m.services {
		var selected []pod
		for _, p := range m.pods() {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.tmpl.Labels)) {
				selected = append(selected, p)
			}
		}
		if len(selected) == 0 {
			t.Errorf("Service %s: its selector %v selects no pod", n, s.Spec.Selector)
		}
		for _, sp := range s.Spec.Ports {
			for _, p := range selected {
				if !hasPort(p.tmpl, sp.TargetPort.String()) {
					t.Errorf("Service %s port %s: %s has no container port %s", n, sp.Name, p.owner, sp.TargetPort.String())
				}
			}
		}
	}
	checkJobs(t, m, workers)
	checkRouterConfig(t, m)
}

func hasPort(p *corev1.PodTemplateSpec, port string) bool {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkPod: images with a Dockerfile, volumes declared and existing,
// probes on declared ports, $(VAR) declared, a Job's restart policy.
func checkPod(t *testing.T, m *manifests, p pod) {
	t.Helper()
	spec := p.tmpl.Spec
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
		if v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] == nil {
			t.Errorf("%s: volume %s: no ConfigMap %s", p.owner, v.Name, v.ConfigMap.Name)
		}
		if v.PersistentVolumeClaim != nil && m.claims[v.PersistentVolumeClaim.ClaimName] == nil {
			t.Errorf("%s: volume %s: no PersistentVolumeClaim %s", p.owner, v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if strings.HasPrefix(p.owner, "Job ") && spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("%s: restartPolicy %q (a Job's pods need Never or OnFailure)", p.owner, spec.RestartPolicy)
	}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		image := c.Image[strings.LastIndex(c.Image, "/")+1:]
		image, _, _ = strings.Cut(image, ":")
		if _, err := os.Stat(filepath.Join(repoRoot, "deploy/docker", image+".Dockerfile")); err != nil {
			t.Errorf("%s container %s: image %s has no deploy/docker/%s.Dockerfile", p.owner, c.Name, c.Image, image)
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				t.Errorf("%s container %s: mount of undeclared volume %s", p.owner, c.Name, vm.Name)
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && !hasPort(&corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}, c.ReadinessProbe.HTTPGet.Port.String()) {
			t.Errorf("%s container %s: readiness probe on undeclared port %s", p.owner, c.Name, c.ReadinessProbe.HTTPGet.Port.String())
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
			for _, ref := range varRef.FindAllStringSubmatch(strings.ReplaceAll(a, "$$", ""), -1) {
				if !env[ref[1]] {
					t.Errorf("%s container %s: %s refers to $(%s), not declared in its env (Kubernetes would pass it literally)", p.owner, c.Name, a, ref[1])
				}
			}
		}
	}
}

// checkJobs: the attackers are an Indexed Job of workers pods, each
// taking its share from JOB_COMPLETION_INDEX and waiting at the barrier
// for workers parties; the merge reads every share's file.
func checkJobs(t *testing.T, m *manifests, workers int) {
	t.Helper()
	attack, merge, barrier := m.jobs["attack"], m.jobs["merge"], m.jobs["barrier"]
	if attack == nil || merge == nil || barrier == nil {
		t.Fatalf("want Jobs attack, barrier and merge; have %v", keys(m.jobs))
	}
	s := attack.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("attack: completionMode %v, want Indexed", s.CompletionMode)
	}
	if s.Completions == nil || s.Parallelism == nil || int(*s.Completions) != workers || int(*s.Parallelism) != workers {
		t.Errorf("attack: completions %v and parallelism %v, want both %d (every share runs at once)", s.Completions, s.Parallelism, workers)
	}
	c := s.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if !strings.Contains(args, fmt.Sprintf("--share $(JOB_COMPLETION_INDEX)/%d", workers)) {
		t.Errorf("attack: arguments %q do not take the share from JOB_COMPLETION_INDEX of %d", args, workers)
	}
	index := false
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			index = true
		}
	}
	if !index {
		t.Errorf("attack: JOB_COMPLETION_INDEX is not declared from the completion-index annotation")
	}
	out := flag(c.Args, "--out")
	if !strings.Contains(out, "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("attack: --out %q is not one file per share", out)
	}
	for _, flagName := range []string{"--target", "--barrier", "--router-admin"} {
		u, err := url.Parse(flag(c.Args, flagName))
		if err != nil || m.services[u.Hostname()] == nil || !servicePort(m.services[u.Hostname()], u.Port()) {
			t.Errorf("attack: %s %q is not a port of a Service of the manifests", flagName, flag(c.Args, flagName))
		}
	}
	if got := flag(barrier.Spec.Template.Spec.Containers[0].Args, "--parties"); got != strconv.Itoa(workers) {
		t.Errorf("barrier: --parties %s, want %d", got, workers)
	}
	mc := merge.Spec.Template.Spec.Containers[0]
	var want []string
	for i := range workers {
		want = append(want, strings.ReplaceAll(out, "$(JOB_COMPLETION_INDEX)", strconv.Itoa(i)))
	}
	if mc.Args[0] != "merge" || !slices.Equal(mc.Args[len(mc.Args)-workers:], want) {
		t.Errorf("merge: arguments %v do not end with every share's file %v", mc.Args, want)
	}
	if len(merge.Spec.Template.Spec.InitContainers) != 1 || !strings.Contains(strings.Join(merge.Spec.Template.Spec.InitContainers[0].Command, " "), fmt.Sprintf("-ge %d", workers)) {
		t.Errorf("merge: no init container waiting for %d share files", workers)
	}
}

func servicePort(s *corev1.Service, port string) bool {
	for _, p := range s.Spec.Ports {
		if strconv.Itoa(int(p.Port)) == port {
			return true
		}
	}
	return false
}

func flag(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkRouterConfig: the routers' config is valid (cellbench/config) and
// every placement's endpoint is a port of the cells Service.
func checkRouterConfig(t *testing.T, m *manifests) {
	t.Helper()
	cm := m.configMaps["cellbench-router-config"]
	if cm == nil {
		t.Fatal("no ConfigMap cellbench-router-config")
	}
	cfg, err := config.Parse([]byte(cm.Data["router.json"]))
	if err != nil {
		t.Fatalf("router.json: %v", err)
	}
	for name, p := range cfg.Placements {
		u, err := url.Parse(p.Endpoint)
		if err != nil || m.services[u.Hostname()] == nil || !servicePort(m.services[u.Hostname()], u.Port()) {
			t.Errorf("placement %s: endpoint %s is not a port of a Service of the manifests", name, p.Endpoint)
		}
	}
}

// TestCommittedManifests validates deploy/kubernetes/cellbench.yaml and
// checks that it is what `harness k8s` renders with its defaults.
func TestCommittedManifests(t *testing.T) {
	doc, err := os.ReadFile("../cellbench.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check(t, decode(t, doc), 4)
	if rendered := render(t, "--workers", "4"); !bytes.Equal(rendered, doc) {
		t.Errorf("deploy/kubernetes/cellbench.yaml is not what `harness k8s --workers 4` renders: run go run ./harness k8s --workers 4 --out deploy/kubernetes/cellbench.yaml")
	}
	k, err := os.ReadFile("../kustomization.yaml")
	if err != nil || !strings.Contains(string(k), "- cellbench.yaml") {
		t.Errorf("kustomization.yaml does not list cellbench.yaml: %v", err)
	}
}

// TestRenderedManifests validates other splits and the Pingora router.
func TestRenderedManifests(t *testing.T) {
	for _, args := range [][]string{{"--workers", "1"}, {"--workers", "10", "--router", "pingora-router"}} {
		n, _ := strconv.Atoi(args[1])
		check(t, decode(t, render(t, args...)), n)
	}
	cmd := exec.Command("go", "run", "./harness", "k8s", "--workers", "3")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "does not split evenly") {
		t.Errorf("--workers 3 of 1000 req/s: %v %s", err, out)
	}
}

func render(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"run", "./harness", "k8s"}, args...)...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("harness k8s %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// TestDockerfiles: one per binary, each building what it names.
func TestDockerfiles(t *testing.T) {
	for _, b := range []string{"go-router", "pingora-router", "controlplane", "mockbackends", "harness"} {
		doc, err := os.ReadFile(filepath.Join(repoRoot, "deploy/docker", b+".Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^FROM `).Match(doc) || !strings.Contains(string(doc), "ENTRYPOINT [\"/usr/local/bin/"+b+"\"]") {
			t.Errorf("%s.Dockerfile: no FROM or no ENTRYPOINT of /usr/local/bin/%s", b, b)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, b)); err != nil {
			t.Errorf("%s.Dockerfile builds ./%s: %v", b, b, err)
		}
	}
}
