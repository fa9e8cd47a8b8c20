package ui

import (
	"html/template"
	"time"

	"github.com/mesh-sync/mesh/object"
)

// The pages, rendered on the server: each works without JavaScript.
const pages = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.}} · mesh</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b}
header{background:#24303f;color:#fff;padding:.5em 1em}header a{color:#fff;margin-right:1em}
main{padding:1em}table{border-collapse:collapse}td,th{padding:.15em .6em;text-align:left;vertical-align:top}
tr:nth-child(even){background:#f4f6f8}.mono,pre{font-family:ui-monospace,monospace;font-size:13px}
.add{background:#e6ffec}.del{background:#ffebe9}.hunk{color:#6f42c1}.meta{color:#57606a;font-weight:bold}
.ln{color:#8c959f;text-align:right;user-select:none}.merge{color:#8250df}.conflict{color:#cf222e}
form.inline{display:inline}.error{color:#cf222e}
.side{display:inline-block;vertical-align:top;width:48%;margin-right:1%}.side pre{background:#f6f8fa;padding:.5em;overflow:auto}
textarea{width:97%;font-family:ui-monospace,monospace}
tr.commit td{height:24px;padding-top:0;padding-bottom:0;white-space:nowrap;vertical-align:middle}tr.commit td.graph{padding:0}
.graph svg{display:block}.graph line{stroke-width:2}.graph circle{stroke:none}
.c0{stroke:#0969da;fill:#0969da}.c1{stroke:#cf222e;fill:#cf222e}.c2{stroke:#1a7f37;fill:#1a7f37}
.c3{stroke:#8250df;fill:#8250df}.c4{stroke:#bc4c00;fill:#bc4c00}.c5{stroke:#57606a;fill:#57606a}
</style></head><body><header><a href="/history">History</a><a href="/conflicts">Conflicts</a><a href="/devices">Devices</a></header><main>{{end}}
{{define "foot"}}</main></body></html>{{end}}

{{define "error"}}{{template "head" .Title}}<h1>{{.Title}}</h1><p class="error" id="error">{{.Error}}</p>{{template "foot"}}{{end}}

{{define "history"}}{{template "head" "History"}}{{with .Data}}
<h1>History{{if .Path}} of <span class="mono">{{.Path}}</span>{{end}}</h1>
<form method="get" action="/history">
<label>Path <input name="path" value="{{.Path}}"></label>
<label>Device <input name="device" value="{{.Device}}"></label>
<button>Filter</button></form>
<table id="commits"><tr><th></th><th>commit</th><th>when</th><th>device</th><th>message</th></tr>
{{range .Commits}}<tr class="commit">
<td class="graph">{{with .Row}}<svg width="{{.Width}}" height="24" viewBox="0 0 {{.Width}} 24" aria-hidden="true">{{range .Lines}}<line x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" class="c{{.Color}}"/>{{end}}<circle cx="{{.X}}" cy="12" r="4" class="c{{.Color}}"/></svg>{{end}}</td>
<td class="mono"><a href="/tree/{{.ID}}/">{{.Short}}</a></td>
<td>{{when .Time}}</td><td>{{.Name}}</td>
<td>{{if .Merge}}<span class="merge">merge</span> {{end}}{{.Subject}}{{if .Conflicts}} <span class="conflict">({{.Conflicts}} conflict{{if gt .Conflicts 1}}s{{end}})</span>{{end}}</td></tr>
{{else}}<tr><td colspan="5">No commits{{if .Path}} changed {{.Path}}{{end}}.</td></tr>{{end}}
</table>{{if .More}}<p>Older commits are not shown.</p>{{end}}
{{end}}{{template "foot"}}{{end}}

{{define "crumbs"}}<p class="mono" id="crumbs"><a href="/tree/{{.Commit.ID}}/">{{.Commit.Short}}</a>:{{range .Parents}}/<a href="/tree/{{$.Commit.ID}}/{{pathURL .Path}}">{{.Name}}</a>{{end}}</p>{{end}}

{{define "tree"}}{{with .Data}}{{$c := .Commit.ID}}{{template "head" (or .Path "/")}}
<h1 class="mono">{{or .Path "/"}}</h1>
<p>At commit <a class="mono" href="/tree/{{.Commit.ID}}/">{{.Commit.Short}}</a> by {{.Commit.Name}}, {{when .Commit.Time}}: {{.Commit.Subject}}</p>
{{template "crumbs" .}}
<form method="get" action="/switch" id="switch"><input type="hidden" name="path" value="{{.Path}}">
<label>The same {{if eq .Kind.String "dir"}}folder{{else}}file{{end}} at <select name="rev">{{range .Recent}}<option value="{{.ID}}"{{if eq .ID $c}} selected{{end}}>{{.Short}} {{when .Time}} {{.Subject}}</option>{{end}}</select></label> <button>Show</button></form>
{{if eq .Kind.String "dir"}}
<p><a href="/zip/{{$c}}/{{pathURL .Path}}">download as zip</a> · <a id="restore-folder" href="/restore-folder?rev={{$c}}&amp;path={{.Path}}">restore this folder to this commit…</a></p>
<table id="entries"><tr><th>name</th><th>size</th><th></th></tr>
{{range .Entries}}<tr class="entry"><td class="mono"><a href="/tree/{{$c}}/{{pathURL .Path}}">{{.Name}}{{if eq .Kind.String "dir"}}/{{end}}</a></td>
<td>{{if ne .Kind.String "dir"}}{{.Size}}{{end}}</td>
<td>{{if ne .Kind.String "dir"}}<a href="/versions/{{pathURL .Path}}">versions</a>{{end}}</td></tr>
{{else}}<tr><td colspan="3">Empty folder.</td></tr>{{end}}</table>
{{else if .Target}}<p>A link to <span class="mono">{{.Target}}</span>.</p>
{{else}}
<p>{{.Size}} bytes · <a href="/raw/{{.Commit.ID}}/{{pathURL .Path}}">download</a> · <a id="versions" href="/versions/{{pathURL .Path}}">every version</a></p>
{{if .Image}}<img alt="{{.Path}}" src="/raw/{{.Commit.ID}}/{{pathURL .Path}}" style="max-width:100%">
{{else if .Text}}<table class="mono" id="file">{{range $i, $l := .Lines}}<tr><td class="ln">{{inc $i}}</td><td><pre style="margin:0">{{$l}}</pre></td></tr>{{end}}</table>
{{else}}<p>A binary file.</p>{{end}}
{{end}}{{end}}{{template "foot"}}{{end}}

{{define "versions"}}{{template "head" "Versions"}}{{$csrf := .CSRF}}{{with .Data}}
<h1>Versions of <span class="mono">{{.Path}}</span></h1>
<form method="get" action="/diff" id="diffform"><input type="hidden" name="path" value="{{.Path}}">
<table id="versions"><tr><th>a</th><th>b</th><th>commit</th><th>when</th><th>device</th><th>size</th><th>name</th><th>message</th><th></th></tr>
{{range $i, $v := .Versions}}<tr class="version">
<td><input type="radio" name="a" value="{{$v.ID}}"{{if eq $i 1}} checked{{end}}></td>
<td><input type="radio" name="b" value="{{$v.ID}}"{{if eq $i 0}} checked{{end}}></td>
<td class="mono"><a href="/tree/{{$v.ID}}/{{pathURL $v.Path}}">{{$v.Short}}</a></td><td>{{when $v.Time}}</td><td>{{$v.Name}}</td>
<td>{{if $v.File.IsZero}}deleted{{else}}{{$v.Size}}{{end}}</td><td class="mono">{{$v.Path}}</td><td>{{$v.Subject}}</td>
<td>{{if not $v.File.IsZero}}<button form="restore-{{$i}}">restore</button>{{end}}</td></tr>
{{end}}</table><button id="diff">Diff a → b</button></form>
{{range $i, $v := .Versions}}{{if not $v.File.IsZero}}<form class="inline" method="post" action="/restore" id="restore-{{$i}}">
<input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="path" value="{{$.Data.Path}}">
<input type="hidden" name="rev" value="{{$v.ID}}"></form>{{end}}{{end}}
<h2>Restore a version under a new name</h2>
<form method="post" action="/restore" id="restore-as"><input type="hidden" name="csrf" value="{{$csrf}}">
<input type="hidden" name="path" value="{{.Path}}">
<label>Version <select name="rev">{{range .Versions}}{{if not .File.IsZero}}<option value="{{.ID}}">{{.Short}} {{.Subject}}</option>{{end}}{{end}}</select></label>
<label>New name <input name="as" value="{{.Path}}.restored"></label><button>Restore</button></form>
{{end}}{{template "foot"}}{{end}}

{{define "diff"}}{{template "head" "Diff"}}{{with .Data}}
<h1>{{if .Path}}<span class="mono">{{.Path}}</span>: {{end}}<span class="mono">{{short .A}}</span> → <span class="mono">{{short .B}}</span></h1>
{{if .Path}}<p><a href="/versions/{{pathURL .Path}}">every version</a></p>{{end}}
<pre id="patch">{{range .Lines}}<span class="{{.Kind}}">{{.Text}}</span>
{{else}}No differences.{{end}}</pre>
{{end}}{{template "foot"}}{{end}}

{{define "conflicts"}}{{template "head" "Conflicts"}}{{$csrf := .CSRF}}{{with .Data}}
<h1>Conflicts</h1>
{{range $i, $k := .Conflicts}}<section class="conflict" id="conflict-{{$i}}">
<h2 class="mono">{{$k.Path}}</h2>
<p>{{if $k.Copy}}{{$k.Whose}} is kept as <span class="mono">{{$k.Copy}}</span>.{{else}}Both versions are in the file, between markers.{{end}}</p>
{{if $k.Binary}}<p>Not text: choose a version.</p>{{else}}
<div class="side"><h3>This file</h3><pre class="mine">{{$k.Mine}}</pre></div>{{if $k.Copy}}<div class="side"><h3>{{$k.Whose}}</h3><pre class="theirs">{{$k.Theirs}}</pre></div>{{end}}{{end}}
<form method="post" action="/resolve"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="path" value="{{$k.Path}}">
<button name="keep" value="mine">Keep this file</button>
{{if $k.Copy}}<button name="keep" value="theirs">Keep {{$k.Whose}}</button><button name="keep" value="both">Keep both</button>{{end}}</form>
{{if not $k.Binary}}<form method="post" action="/resolve"><input type="hidden" name="csrf" value="{{$csrf}}"><input type="hidden" name="path" value="{{$k.Path}}">
<input type="hidden" name="keep" value="text"><textarea name="text" rows="8">{{$k.Mine}}</textarea><br><button class="save">Save this text as the file</button></form>{{end}}
</section>{{else}}<p id="none">No open conflicts.</p>{{end}}
{{end}}{{template "foot"}}{{end}}

{{define "resolved"}}{{template "head" "Resolved"}}{{with .Data}}
<h1>Resolved</h1><p id="resolved">The conflict{{if gt .Ended 1}}s{{end}} at <span class="mono">{{.Path}}</span> {{if gt .Ended 1}}are{{else}}is{{end}} resolved in commit <span class="mono">{{.Commit.Short}}</span>{{range .RemovedCopies}}; removed <span class="mono">{{.}}</span>{{end}}.</p>
<p><a href="/conflicts">back to the conflicts</a></p>
{{end}}{{template "foot"}}{{end}}

{{define "folder"}}{{template "head" "Restore a folder"}}{{$csrf := .CSRF}}{{with .Data}}
<h1>Restore <span class="mono">{{or .Path "the whole folder"}}</span> to <span class="mono">{{.Commit.Short}}</span></h1>
<p>{{.Commit.Subject}} ({{.Commit.Name}}, {{when .Commit.Time}}). What would change in the folder:</p>
<table id="preview"><tr><th></th><th>path</th></tr>
{{range .Changes}}<tr class="change"><td>{{.Status}}</td><td class="mono">{{.Path}}</td></tr>{{else}}<tr><td colspan="2">Nothing: it is as at that commit.</td></tr>{{end}}</table>
{{if .Changes}}<form method="post" action="/restore-folder"><input type="hidden" name="csrf" value="{{$csrf}}">
<input type="hidden" name="path" value="{{.Path}}"><input type="hidden" name="rev" value="{{.Rev}}">
<button id="do-restore">Restore</button> (an uncommitted change in the way refuses it)</form>{{end}}
{{end}}{{template "foot"}}{{end}}

{{define "devices"}}{{template "head" "Devices"}}{{with .Data}}
<h1>Devices</h1>
<p>This device: {{.Name}} <span class="mono">{{.Me}}</span>, at <span class="mono">{{short .Head.String}}</span>; {{if .Daemon}}a daemon (or mesh serve, or sync) serves it now{{else}}nothing serves it now (mesh daemon keeps it in sync){{end}}.</p>
<table id="devices"><tr><th>device</th><th>state</th><th>last contact</th><th>address</th><th>heads</th></tr>
{{range .Devices}}<tr class="device"><td class="mono">{{.Device}}</td><td>{{if .Alive}}online{{else}}offline{{end}}</td>
<td>{{if not .LastContact.IsZero}}{{when .LastContact}}{{end}}</td><td class="mono">{{.FetchAddr}}</td>
<td>{{range .Heads}}<span class="mono">{{.Branch}} <a href="/tree/{{.Commit}}/">{{short .Commit.String}}</a></span> {{end}}
{{range .Refused}}<div class="error">refused {{.Branch}} {{short .Commit.String}}: {{.Reason}}</div>{{end}}</td></tr>
{{else}}<tr><td colspan="5">No other device seen yet (mesh sync or mesh daemon finds them).</td></tr>{{end}}</table>
<h2>Artifact branches</h2>
<table id="artifacts"><tr><th>branch</th><th>tip</th><th>versions</th></tr>
{{range .Artifacts}}<tr><td class="mono">{{.Branch}}</td><td class="mono"><a href="/tree/{{.Tip}}/">{{short .Tip.String}}</a></td><td>{{.Versions}}</td></tr>
{{else}}<tr><td colspan="3">None.</td></tr>{{end}}</table>
{{end}}{{template "foot"}}{{end}}

{{define "restored"}}{{template "head" "Restored"}}{{with .Data}}
<h1>Restored</h1><p id="restored"><span class="mono">{{or .Path "The folder"}}</span> from <span class="mono">{{.Source.Short}}</span> is in the folder{{if ne .As .Path}} as <span class="mono">{{.As}}</span>{{end}}; commit to keep it in history.</p>
{{if not $.Folder}}<p><a href="/versions/{{pathURL .Path}}">back to its versions</a></p>{{end}}
{{end}}{{template "foot"}}{{end}}
`

func parseTemplates() (*template.Template, error) {
	return template.New("ui").Funcs(template.FuncMap{
		"when": func(t time.Time) string { return t.Format("2006-01-02 15:04") },
		"inc":  func(i int) int { return i + 1 },
		"short": func(s string) string {
			if id, err := object.ParseID(s); err == nil {
				return id.Short()
			}
			return s
		},
		"pathURL": escapePath,
	}).Parse(pages)
}
