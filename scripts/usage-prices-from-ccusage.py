#!/usr/bin/env python3
"""Reads back the prices ccusage charges with --offline, in LiteLLM format.

Usage: usage-prices-from-ccusage.py CCUSAGE_BINARY MODEL... > prices.json

For every model it writes one Claude Code log line per token kind (100k and
300k tokens, to see the 200k tier, and a fast-mode line), runs
`ccusage claude daily --json --offline` without network, and divides each
cost by its tokens. src/usage/prices.json is this output plus its
`authvault_price_table` entry (version, date).
"""
import json, os, subprocess, sys, tempfile
CC = sys.argv[1]
models = sys.argv[2:]
# categories, each on its own day: (name, usage dict, tokens)
def usage(cat, n, fast=False):
    u = {"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}
    if cat=="in": u["input_tokens"]=n
    elif cat=="out": u["output_tokens"]=n
    elif cat=="cc5": u["cache_creation_input_tokens"]=n; u["cache_creation"]={"ephemeral_5m_input_tokens":n,"ephemeral_1h_input_tokens":0}
    elif cat=="cc1h": u["cache_creation_input_tokens"]=n; u["cache_creation"]={"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":n}
    elif cat=="cr": u["cache_read_input_tokens"]=n
    if fast: u["speed"]="fast"
    return u
cases=[]
for c in ["in","out","cc5","cc1h","cr"]:
    cases.append((c,100000,False)); cases.append((c,300000,False))
cases.append(("in",100000,True))
root=tempfile.mkdtemp()
d=os.path.join(root,"projects","-p"); os.makedirs(d)
lines=[]
for mi,m in enumerate(models):
    for ci,(c,n,f) in enumerate(cases):
        day = 1+ci
        lines.append(json.dumps({"type":"assistant","sessionId":"s","requestId":f"r{mi}-{ci}","timestamp":f"2025-01-{day:02d}T12:00:00.000Z","message":{"id":f"m{mi}-{ci}","model":m,"usage":usage(c,n,f)}},separators=(",",":")))
open(os.path.join(d,"s.jsonl"),"w").write("\n".join(lines)+"\n")
home=tempfile.mkdtemp()
out=subprocess.run(["unshare","-rn",CC,"claude","daily","--json","--offline","--timezone","UTC"],env={"HOME":home,"CLAUDE_CONFIG_DIR":root,"PATH":"/usr/bin:/bin"},capture_output=True,text=True)
if out.returncode: print(out.stderr, file=sys.stderr); sys.exit(1)
data=json.loads(out.stdout)
res={m:{} for m in models}
for row in data["daily"]:
    ci=int(row["date"][-2:])-1
    c,n,f=cases[ci]
    for b in row["modelBreakdowns"]:
        name=b["modelName"][:-5] if f and b["modelName"].endswith("-fast") else b["modelName"]
        res[name][(c,n,f)]=b["cost"]
def p(x): return float(f"{x:.6g}")
table={}
for m in models:
    r=res.get(m,{})
    if not r or r.get(("in",100000,False),0)==0: print("no price",m,file=sys.stderr); continue
    inp=p(r[("in",100000,False)]/1e5); out_=p(r[("out",100000,False)]/1e5)
    e={"input_cost_per_token":inp,"output_cost_per_token":out_,
       "cache_creation_input_token_cost":p(r[("cc5",100000,False)]/1e5),
       "cache_read_input_token_cost":p(r[("cr",100000,False)]/1e5)}
    onehour=p(r[("cc1h",100000,False)]/1e5)
    if abs(onehour-2*inp)>1e-15: e["_note_1h"]=onehour
    for c,k in [("in","input_cost_per_token"),("out","output_cost_per_token"),("cc5","cache_creation_input_token_cost"),("cr","cache_read_input_token_cost")]:
        above=p((r[(c,300000,False)]-2e5*e[k])/1e5)
        if abs(above-e[k])>1e-15: e[k+"_above_200k_tokens"]=above
    fast=r[("in",100000,True)]/r[("in",100000,False)]
    if abs(fast-1)>1e-9: e["provider_specific_entry"]={"fast":p(fast)}
    table[m]=e
print(json.dumps(table,indent=2))
