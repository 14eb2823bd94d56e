import {
  checkGrads,
  grad,
  memoryStats,
  sgd,
  type Tensor,
  tensor,
  useBackend,
  valueAndGrad,
  vjp,
} from "../mod.ts";
useBackend("cpu");
const show = (name: string, fn: () => unknown) => {
  const before = memoryStats().liveTensors;
  try {
    const r = fn();
    console.log(name, "NO THROW", r);
  } catch (e) {
    console.log(name, (e as Error).constructor.name, JSON.stringify((e as Error).message));
  }
  console.log("   leak:", memoryStats().liveTensors - before);
};
Deno.test("probe", async () => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([1, 2, 3, 4]);
  show("add", () => a.add(b));
  show("sub", () => a.sub(b));
  show("matmul", () => a.matmul(tensor([[1, 2], [3, 4]])));
  show("matmul 1d", () => a.matmul(b));
  show("sum axis", () => a.sum(2));
  show("sum axis -3", () => a.sum(-3));
  show("mean axis", () => a.mean(5));
  show("reshape", () => a.reshape([4, 2]));
  show("reshape -1", () => a.reshape([4, -1]));
  show("ragged", () => tensor([[1, 2], [3]] as never));
  show("ragged2", () => tensor([[1, 2], 3] as never));
  show("ragged3", () => tensor([1, [2, 3]] as never));
  show("nonnum", () => tensor([1, "a"] as never));
  show("nonnum NaN ok", () => tensor([1, NaN]));
  show("nonnum null", () => tensor([[1, null]] as never));
  show("grad nonscalar", () => grad((x: Tensor) => x.mul(2))(b));
  show("vag nonscalar", () => valueAndGrad((x: Tensor) => x.mul(2))(b));
  show("grad number", () => grad((_x: Tensor) => 3 as never)(b));
  show("grad undefined", () => grad((_x: Tensor) => undefined as never)(b));
  show("argnums", () => grad((x: Tensor, y: Tensor) => x.add(y).sum(), { argnums: 2 })(b, b));
  show(
    "argnums arr",
    () => grad((x: Tensor, y: Tensor) => x.add(y).sum(), { argnums: [0, 2] })(b, b),
  );
  show("argnums -1", () => grad((x: Tensor) => x.sum(), { argnums: -1 })(b));
  show(
    "argnums nontensor",
    () => grad((x: number, y: Tensor) => y.mul(x).sum(), { argnums: 0 })(3, b),
  );
  show("hasAux bad", () => grad((x: Tensor) => x.sum(), { hasAux: true })(b));
  const d = tensor([1, 2]);
  d.dispose();
  show("disposed add", () => d.add(1));
  show("disposed add2", () => b.add(d));
  show("disposed grad", () => grad((x: Tensor) => x.sum())(d));
  show("disposed shape", () => d.shape);
  try {
    await d.data();
  } catch (e) {
    console.log("disposed data", (e as Error).constructor.name, (e as Error).message);
  }
  try {
    await b.item();
  } catch (e) {
    console.log("item", (e as Error).constructor.name, (e as Error).message);
  }
  const g = tensor([1, 2], { backend: "webgpu" });
  const c = tensor([1, 2], { backend: "cpu" });
  show("mix add", () => g.add(c));
  show("mix matmul", () => g.matmul(c));
  show("mix grad", () => grad((x: Tensor) => x.mul(c).sum())(g));
  show("sgd shape", () => sgd({ w: b }, { w: a }, { lr: 0.1 }));
  show("sgd lr", () => sgd({ w: b }, { w: b }, { lr: NaN }));
  show("sgd struct", () => sgd({ w: b }, { v: b }, { lr: 1 }));
  const [y, pb] = vjp((x: Tensor) => x.mul(2), b);
  show("pullback shape", () => pb(tensor([1, 2])));
  show("pullback count", () => pb([b, b] as never));
  show("throw mid grad", () =>
    grad((x: Tensor) => {
      x.mul(2).exp();
      throw new Error("boom");
    })(b));
  show("transpose", () => a.transpose([0, 0]));
  show("broadcastTo", () => a.broadcastTo([3, 3]));
  show("tensor shape", () => tensor([1, 2, 3], { shape: [2, 2] }));
  try {
    await checkGrads((x: Tensor) => x.sum(), [b], { argnums: 3 });
  } catch (e) {
    console.log("checkGrads argnums", (e as Error).constructor.name, (e as Error).message);
  }
  console.log(await b.add(1).array());
});
