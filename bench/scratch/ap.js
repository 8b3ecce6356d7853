const { makeBoard, mutate } = require('/work/main/bench/data.js');
const { applyPatch, diff } = require('/work/main');
const fjp = require('/work/main/node_modules/fast-json-patch');
let a = makeBoard(1000); const states=[a]; for (let i=0;i<200;i++){ states.push(mutate(states.at(-1), 0.01, i)); }
const patches = []; for (let i=1;i<states.length;i++) patches.push(diff(states[i-1], states[i]));
console.log('ops per patch', patches[0].length, JSON.stringify(patches[0]).slice(0,200));
for (let w=0;w<(process.env.W||5);w++){ let t=process.hrtime.bigint(); let d=states[0]; for(let r=0;r<20;r++){ d=states[0]; for(const p of patches) d=applyPatch(d,p);} const us=Number(process.hrtime.bigint()-t)/1e3/(20*patches.length);
 t=process.hrtime.bigint(); for(let r=0;r<20;r++){ let e=states[0]; for(const p of patches) e=fjp.applyPatch(e,p,false,false).newDocument;} const us2=Number(process.hrtime.bigint()-t)/1e3/(20*patches.length); if(w>2) console.log('deltacast',us.toFixed(2),'µs  fjp (mutating, no clone)',us2.toFixed(2));}
