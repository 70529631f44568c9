package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"cellbench/config"
)

// k8sTemplate is the manifests of one distributed run (deploy/kubernetes/).
//
//go:embed k8s.yaml.tmpl
var k8sTemplate string

// k8sOptions are the flags of `harness k8s`.
type k8sOptions struct {
	workers       int
	scenario      string
	scenarios     string
	router        string
	images        string
	tag           string
	routerCPU     int
	attackerCPU   string
	durationScale float64
	out           string
}

// k8sRouters are the routers the manifests deploy, by Service name, with
// their image and the report's target name.
var k8sRouters = []struct{ Name, Image, Target, Engine string }{
	{"go-router", "go-router", "go-tuned", "tuned"},
	{"pingora-router", "pingora-router", "pingora", ""},
}

func k8sCmd() *cobra.Command {
	var o k8sOptions
	cmd := &cobra.Command{
		Use:   "k8s --workers N",
		Short: "Render the Kubernetes manifests of a distributed run: cells, control plane and routers as Deployments with Services, the barrier, an Indexed Job of N attackers, the merge",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			root, err := repoRoot()
			if err != nil {
				return err
			}
			doc, err := renderK8s(root, &o)
			if err != nil {
				return err
			}
			if o.out == "" || o.out == "-" {
				_, err = os.Stdout.Write(doc)
				return err
			}
			return os.WriteFile(o.out, doc, 0o644)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.workers, "workers", 4, "attackers: the Indexed Job's completions and parallelism, each sending rate/N")
	f.StringVar(&o.scenario, "scenario", "routing", "scenario name (in --scenarios): a steady open loop without a timeline")
	f.StringVar(&o.scenarios, "scenarios", "scenarios", "directory of scenario files")
	f.StringVar(&o.router, "router", "go-router", "the router the attackers load: go-router or pingora-router")
	f.StringVar(&o.images, "images", "cellbench/", "image name prefix (a registry and path, e.g. registry.example.com/cellbench/)")
	f.StringVar(&o.tag, "tag", "dev", "image tag")
	f.IntVar(&o.routerCPU, "router-cpu", 2, "each router's CPU limit in cores (= its --workers)")
	f.StringVar(&o.attackerCPU, "attacker-cpu", "1", "each attacker's CPU limit (Kubernetes quantity)")
	f.Float64Var(&o.durationScale, "duration-scale", 1, "multiply the scenario's duration")
	f.StringVar(&o.out, "out", "", "file to write (default standard output)")
	return cmd
}

// k8sCell is one mock cell: its placement and port on the cells Service.
type k8sCell struct {
	Name     string
	Port     int
	PortName string
}

// k8sRouter is one router Deployment.
type k8sRouter struct {
	Name, Image string
	Args        []string
}

// renderK8s renders the manifests; the scenario's router config is the
// routers' and the control plane's, its endpoints on the cells Service.
func renderK8s(root string, o *k8sOptions) ([]byte, error) {
	if o.workers < 1 || o.workers > 1000 {
		return nil, errors.New("--workers: want 1..1000")
	}
	if o.routerCPU < 1 || o.durationScale <= 0 || o.durationScale > 10 {
		return nil, errors.New("--router-cpu wants >= 1, --duration-scale (0, 10]")
	}
	target := ""
	for _, r := range k8sRouters {
		if r.Name == o.router {
			target = r.Target
		}
	}
	if target == "" {
		return nil, fmt.Errorf("--router %q: want go-router or pingora-router", o.router)
	}
	sc, err := loadScenario(root, o.scenarios, o.scenario)
	if err != nil {
		return nil, err
	}
	if why := attackNotApplicable(sc); why != "" {
		return nil, fmt.Errorf("scenario %s cannot be shared between attackers: %s", sc.Name, why)
	}
	if sc.Rate%o.workers != 0 {
		return nil, fmt.Errorf("--workers %d: scenario %s's %d req/s does not split evenly (each attacker sends every N-th request; an even split keeps them alike)", o.workers, sc.Name, sc.Rate)
	}
	cfg, err := sc.RouterConfig(root)
	if err != nil {
		return nil, err
	}
	var cells []k8sCell
	names := make([]string, 0, len(cfg.Placements))
	for n := range cfg.Placements {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		c := k8sCell{Name: n, Port: 9001 + i, PortName: "cell-" + strconv.Itoa(i)}
		cfg.Placements[n].Endpoint = fmt.Sprintf("http://cells:%d", c.Port)
		cells = append(cells, c)
	}
	doc, err := config.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse(doc); err != nil {
		return nil, fmt.Errorf("the router config on the cells Service: %w", err)
	}
	var routers []k8sRouter
	for _, r := range k8sRouters {
		args := []string{"--config", "/etc/cellbench/router.json", "--listen", "0.0.0.0:8080", "--admin", "0.0.0.0:9901",
			"--access-log", "off", "--workers", strconv.Itoa(o.routerCPU), "--node-id", "$(POD_NAME)",
			"--control-plane", "ws://controlplane:8081/connect"}
		if r.Engine != "" {
			args = append([]string{"--engine", r.Engine}, args...)
		}
		routers = append(routers, k8sRouter{Name: r.Name, Image: r.Image, Args: args})
	}
	var files []string
	for i := range o.workers {
		files = append(files, fmt.Sprintf("/results/%s/share-%d.jsonl", o.router, i))
	}
	v := k8sView{
		Args:     fmt.Sprintf(" --workers %d --scenario %s --router %s", o.workers, sc.Name, o.router),
		Scenario: sc.Name, Workers: o.workers, Rate: sc.Rate, ShareRate: sc.Rate / o.workers,
		Router: o.router, TargetName: target, RouterConfig: strings.TrimRight(string(doc), "\n"),
		Cells: cells, CellsCPU: "1", Routers: routers, RouterCPU: o.routerCPU, AttackerCPU: o.attackerCPU,
		DurationScale: strconv.FormatFloat(o.durationScale, 'f', -1, 64), ShareFiles: files, images: o.images, tag: o.tag,
	}
	t, err := template.New("k8s").Funcs(template.FuncMap{
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
	}).Parse(k8sTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// k8sView is what the template shows.
type k8sView struct {
	Args, Scenario             string
	Workers, Rate, ShareRate   int
	Router, TargetName         string
	RouterConfig               string
	Cells                      []k8sCell
	CellsCPU                   string
	Routers                    []k8sRouter
	RouterCPU                  int
	AttackerCPU, DurationScale string
	ShareFiles                 []string
	images, tag                string
}

// Image is the full name of one of the project's images.
func (v k8sView) Image(name string) string { return v.images + name + ":" + v.tag }
