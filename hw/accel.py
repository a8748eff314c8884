"""The GEMM accelerator top: engine datapath, load buffers, controller and stream ports."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.buffer import BankedRing, RingBuffer, ring_add, ring_sub
from hw.deal import READS, DealWalker
from hw.engine import EngineDatapath, check_matmul
from hw.params import act_shape, check_instance, index_shape, lane_shape
from hw.walker import TileWalker, command_layout
from quant.errors import check_int_range
from quant.formats import Scheme, weight_format
from quant.requant import REQUANTIZER
from sim.arch import Accelerator
from sim.resources import out_fifo_depth, ring_count_bits, shares_post
from sim.timing import drain_rows, ring_steps


class GemmAccelerator(wiring.Component):
    """One mixed-scheme GEMM per command, with the timing of sim.timing rules R1-R10b.

    The host writes per-row requantization parameters (``params``), then a command
    (``cmd``: M split, N, K, F, the R2 quotients/remainders, the R3 tiling (loop order and
    residency, R5b) and the output format the post-processors clamp to). The controller
    walks the chunk tiles (R3), asks for each weight/activation block it needs on
    ``load_req`` as soon as its ring has room (R5-R7; a resident buffer's blocks in the
    first outer iteration only, R5b), streams each chunk's steps as their words arrive
    (R8: a step whose word is not yet in the ring holds the array), and drains each output
    tile one row per cycle into the post-processors (R4), whose rows leave on ``out``.
    ``busy`` is high from the cycle after the command was accepted for exactly the GEMM's
    cycle count; ``done`` pulses in the cycle after. The DRAM protocol is described in docs/rtl.md.

    Built with ``matmul=True`` (the matmul path, :attr:`runs_matmul`), the command has three
    more fields, and one with ``matmul`` set runs an activation x activation GEMM
    (sim.timing R11): every row on the DSP core, the weight-role
    operand's blocks loaded like weight blocks but of ``act_bits`` values laid end to end in
    the DSP fields of each beat (:func:`hw.params.matmul_words`; ``load_req``'s ``bytes``
    counts them at ``act_bits``), both operands extended by the command's ``a_signed`` and
    ``b_signed``, and the accumulators leaving unrequantized on the DSP core's ``out``
    lanes (:func:`hw.params.lane_shape`; ``params`` are not used). The controller is the
    same, so the timing is rules R1-R8 for the command the host writes (its R3 tiling with
    the weight role at ``act_bits``). A DSP core that packs rows to a multiplier has no
    matmul path (:func:`sim.resources.rtl_runs_matmul`). Without it the top is the GEMM
    engine alone, with the same ports, widths and Verilog as before the path existed.

    On an engine with column group B (``engine.group_b_cols``, sim.timing R3c) the top has a
    ``deal`` stream (``{f, n}``: group A's positions in row step ``f``, written while idle
    like ``params``) and the command a ``dealt`` bit: the GEMM then runs as dealt tiles
    (:class:`hw.deal.DealWalker`, :class:`hw.buffer.BankedRing`), an activation request
    carries group B's positions (``col0_b``/``cols_b``, in the lanes from column ``cols -
    group_b_cols`` on) and an output row group B's rows, enables and positions (the ``_b``
    fields); in other commands group B works as part of group A.

    A core with 0 rows (a DSP-only or LUT-only engine) is absent, and so are its fields in
    ``load_req``, ``w_load`` and ``out`` and its parameter memory (:attr:`cores` lists the
    present ones); its rows of ``params`` are ignored. The timing is the same: the walker's
    rows of an absent core are 0 (R1/R2 with ``Mf`` or ``Ml`` = 0).

    Parameters:
        accel: the accelerator (engine and ``memory.k_tile``).
        dim_bits: width of M, N, K and the other command fields.
        param_depth: rows of requantization parameters per core (the largest M per core).
        matmul: build the matmul path (sim.timing R11).

    Members:
        cmd: In(stream(command_layout)); accepted when not busy.
        busy, done: Out(1).
        params: In(stream({lut, row, mult, shift, bias, relu})); one row's requantization.
        load_req: Out(stream({w: {en, bytes, k0, steps, row0_dsp, rows_dsp, row0_lut,
            rows_lut}, x: {en, bytes, k0, steps, col0, cols}})): one or two block loads
            (``row0_<core>``/``rows_<core>`` of present cores only).
        w_load: In(stream({data: {dsp, lut}, last})) one K step of weights per beat.
        x_load: In(stream({data, last})) one K step of activations per beat.
        out: Out(stream({dsp, lut, row_dsp, row_lut, dsp_en, lut_en, col0, cols})): one
            drained row of each (present) core.
        deal: In(stream({f, n})), only with column group B: one row step's deal.
        cores: ``("dsp", "lut")``, or the one core with rows.
        runs_matmul: whether the top runs matmul commands.
    """

    def __init__(self, accel: Accelerator, *, dim_bits: int = 16, param_depth: int = 64,
                 matmul: bool = False) -> None:
        check_instance("accel", accel, Accelerator, "a sim.arch.Accelerator")
        e = accel.engine
        self.accel = accel
        self.dim_bits = check_int_range("dim_bits", dim_bits, 4, 32)
        self.param_depth = check_int_range("param_depth", param_depth, 1, 1 << 16)
        kt, c = accel.memory.k_tile, e.cols
        d = dim_bits
        # R3c: column group B's columns (0: one group) and the rings' counter width
        self.group_b = e.group_b_cols
        self.count_bits = ring_count_bits(kt, self.group_b)
        act = act_shape(e.act_format)
        self.rows_of = {"dsp": e.dsp_rows, "lut": e.lut_rows}
        self.cores = tuple(core for core in ("dsp", "lut") if self.rows_of[core])
        self.runs_matmul = check_matmul(e, matmul)
        # R4: both cores drain into one post-processor, the DSP core's rows first
        self.shared = shares_post(e)
        schemes = {"dsp": Scheme.FIXED, "lut": e.lut_core_scheme}
        self.w_fmt = {core: weight_format(schemes[core], e.weight_bits) for core in self.cores}
        w_bytes = -(-(e.rows * kt * e.weight_bits) // 8)
        x_bytes = -(-(c * kt * e.act_bits) // 8)
        shifts = REQUANTIZER.shift_range(e.acc_bits)
        self.param_layout = data.StructLayout({
            "mult": REQUANTIZER.mult_bits, "shift": range(shifts[1] + 1), "bias": e.acc_bits,
            "relu": 1})
        self.w_beat_layout = data.StructLayout({
            core: data.ArrayLayout(e.weight_bits, self.rows_of[core]) for core in self.cores})
        self.x_beat_layout = data.ArrayLayout(act, c)
        request = data.StructLayout({
            "w": data.StructLayout({
                "en": 1, "next": 1, "bytes": range(w_bytes + 1), "k0": d,
                "steps": range(kt + 1),
                **self._per_core(lambda core: {
                    f"row0_{core}": d, f"rows_{core}": range(self.rows_of[core] + 1)})}),
            "x": data.StructLayout({
                "en": 1, "bytes": range(x_bytes + 1), "k0": d, "steps": range(kt + 1),
                "col0": d, "cols": range(c + 1),
                **({"col0_b": d, "cols_b": range(c + 1)} if self.group_b else {})}),
        })
        self.out_layout = data.StructLayout({
            **self._per_core(lambda core: {core: data.ArrayLayout(
                lane_shape(e, core, self.runs_matmul), c)}),
            **self._per_core(lambda core: {f"row_{core}": d}),
            **self._per_core(lambda core: {f"{core}_en": 1}),
            "col0": d, "cols": range(c + 1),
            **({**self._per_core(lambda core: {f"row_{core}_b": d}),
                **self._per_core(lambda core: {f"{core}_en_b": 1}),
                "col0_b": d, "cols_b": range(c + 1)} if self.group_b else {})})
        # R10b's fields: a row count of each core, a step count (at least one bit each)
        self.prefetch_bits = (max(1, e.dsp_rows.bit_length()), max(1, e.lut_rows.bit_length()),
                              (kt).bit_length())
        super().__init__({
            "cmd": In(stream.Signature(command_layout(d, self.runs_matmul,
                                                      self.prefetch_bits, self.group_b > 0))),
            "busy": Out(1),
            "done": Out(1),
            "params": In(stream.Signature(data.StructLayout({
                "lut": 1, "row": range(param_depth), "p": self.param_layout}))),
            "load_req": Out(stream.Signature(request)),
            "w_load": In(stream.Signature(data.StructLayout({
                "data": self.w_beat_layout, "last": 1}))),
            "x_load": In(stream.Signature(data.StructLayout({
                "data": self.x_beat_layout, "last": 1}))),
            "out": Out(stream.Signature(self.out_layout)),
            **({"deal": In(stream.Signature(data.StructLayout({
                "f": range(param_depth), "n": d})))} if self.group_b else {}),
        })

    def _outstanding(self, req, steps, rel):
        """``req + steps - rel`` modulo ``2**count_bits`` (the counters wrap; the true value
        is below): the steps in the ring once a block of ``steps`` more is requested, or the
        words of the compute side's block written so far."""
        return (req + steps - rel)[:self.count_bits]

    def _per_core(self, fields) -> dict:
        """The layout fields ``fields(core)`` of every present core, DSP core first."""
        return {name: shape for core in self.cores for name, shape in fields(core).items()}

    def elaborate(self, platform):
        m = Module()
        e = self.accel.engine
        kt = self.accel.memory.k_tile
        rmax = drain_rows(e.dsp_rows, e.lut_rows, self.shared)  # the longest drain (R4)

        m.submodules.datapath = dp = EngineDatapath(e, self.runs_matmul)
        m.submodules.loader = lw = TileWalker(e.cols, kt, self.dim_bits, self.shared)
        m.submodules.walker = cw = TileWalker(e.cols, kt, self.dim_bits, self.shared)
        grouped = self.group_b > 0
        w_width = len(Value.cast(self.w_load.payload.data))
        m.submodules.w_buf = wbuf = (BankedRing(w_width, kt) if grouped
                                     else RingBuffer(w_width, kt))
        m.submodules.x_buf = xbuf = RingBuffer(len(Value.cast(self.x_load.payload.data)), kt,
                                               self.group_b)
        ring = ring_steps(kt, self.group_b)
        # The output buffer: three tiles' rows and two (sim.resources.out_fifo_depth).
        out_depth = out_fifo_depth(e)
        m.submodules.out_fifo = ofifo = fifo.SyncFIFOBuffered(
            width=len(Value.cast(self.out.payload)), depth=out_depth)

        cmd = Signal(command_layout(self.dim_bits, self.runs_matmul, self.prefetch_bits,
                                    grouped))
        pre_in = Signal()  # R10b: the accepted command's first weight block is in the ring
        # the walkers read the GEMM fields, laid out first (hw.walker.command_layout)
        gemm_cmd = Value.cast(cmd)[:len(Value.cast(lw.cmd))]
        start = Signal()
        m.d.comb += [
            self.cmd.ready.eq(~self.busy),
            start.eq(self.cmd.valid & self.cmd.ready),
            lw.cmd.eq(gemm_cmd), cw.cmd.eq(gemm_cmd),
            pre_in.eq(self.cmd.payload.pre),
            lw.restart.eq(start), cw.restart.eq(start),
            wbuf.restart.eq(start & ~pre_in), xbuf.restart.eq(start),
        ]
        m.d.sync += self.done.eq(0)
        with m.If(start):
            m.d.sync += [cmd.eq(self.cmd.payload), self.busy.eq(1)]

        # R3c: a dealt GEMM's tiles come from two deal walkers (loader, compute) reading the
        # deal table the host writes while idle; ``sel(normal, dealt)`` is the value the
        # controller uses, the dealt one when the command is dealt.
        if grouped:
            ca = e.cols - self.group_b
            dealt = cmd.dealt
            m.submodules.deal_loader = dl = DealWalker(ca, self.group_b, self.dim_bits,
                                                     self.param_depth, self.shared)
            m.submodules.deal_walker = dc = DealWalker(ca, self.group_b, self.dim_bits,
                                                     self.param_depth, self.shared)
            m.submodules.deal_table = dmem = memory.Memory(shape=self.dim_bits,
                                                           depth=self.param_depth, init=[])
            dwp = dmem.write_port()
            m.d.comb += [self.deal.ready.eq(~self.busy), dwp.addr.eq(self.deal.payload.f),
                         dwp.data.eq(self.deal.payload.n),
                         dwp.en.eq(self.deal.valid & self.deal.ready),
                         wbuf.align.eq(dealt)]
            for walker in (dl, dc):
                for i in range(READS):
                    rp = dmem.read_port(domain="comb")
                    m.d.comb += [rp.addr.eq(getattr(walker, f"addr{i}")),
                                 getattr(walker, f"data{i}").eq(rp.data)]
                m.d.comb += [walker.n.eq(cmd.n), walker.nf.eq(cmd.f), walker.restart.eq(start),
                             *(getattr(walker, k).eq(getattr(cmd, k))
                               for k in ("qa", "ra", "qb", "rb"))]
        else:
            dealt = 0

        def sel(normal, deal_value):
            return Mux(dealt, deal_value, normal) if grouped else normal

        # Load streams into the buffers (the controller only requests released banks).
        for src, buf in ((self.w_load, wbuf), (self.x_load, xbuf)):
            m.d.comb += [buf.load.valid.eq(src.valid),
                         buf.load.payload.data.eq(src.payload.data),
                         buf.load.payload.last.eq(src.payload.last),
                         src.ready.eq(buf.load.ready)]

        # Requantization parameters, one memory per core, written while idle.
        param_rd, param_rd_b = {}, {}
        m.d.comb += self.params.ready.eq(~self.busy)
        for core in self.cores:
            lut = int(core == "lut")
            mem = memory.Memory(shape=self.param_layout, depth=self.param_depth, init=[])
            m.submodules[f"params_{core}"] = mem
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.params.payload.row), wp.data.eq(self.params.payload.p),
                         wp.en.eq(self.params.valid & self.params.ready
                                  & (self.params.payload.lut == lut))]
            param_rd[core] = mem.read_port(domain="comb")
            if grouped:
                param_rd_b[core] = mem.read_port(domain="comb")

        # Step counters (modulo 2**ring_count_bits: every difference taken is below it) per
        # ring: steps requested by the loader and released by the end of the last window
        # that uses their block (R6); words written (``in``, R7) and the load position where
        # the compute side's newest block starts (``pos``: the steps of the blocks it loaded
        # before; every word before it is written, R8).
        cnt = {f"{buf}_{k}": Signal(self.count_bits, name=f"{buf}_{k}")
               for buf in ("w", "x") for k in ("req", "rel", "in", "pos")}
        # R10b: a preloaded command keeps the weight ring's counters (every block of the
        # previous GEMM released, the prefetched block requested and written); its compute
        # side starts at that block.
        for buf in ("w", "x"):
            with m.If(start & (pre_in if buf == "w" else 0)):
                m.d.sync += cnt[f"{buf}_pos"].eq(cnt[f"{buf}_rel"])
            with m.Elif(start):
                m.d.sync += [cnt[f"{buf}_{k}"].eq(0) for k in ("req", "rel", "in", "pos")]
            with m.Elif(getattr(self, f"{buf}_load").valid):
                m.d.sync += cnt[f"{buf}_in"].eq(cnt[f"{buf}_in"] + 1)

        # ---- Loader: requests in chunk-tile order, weight block before activation block (R7).
        w_iss, x_iss = Signal(), Signal()  # parts of the loader's tile already requested
        holding, held_x = Signal(), Signal()  # a request is shown but not yet accepted
        l_done = Signal()
        pf_iss = Signal()  # R10b: the prefetch was requested
        # the prefetched block's rows and steps (the host writes at most a core's rows and
        # k_tile steps)
        pf_rows = {core: getattr(cmd, f"pf_rows_{core}") for core in self.cores}
        pf_steps = cmd.pf_steps
        pf_en = Signal()
        pf_show = Signal()
        w_pend = Signal()
        x_pend = Signal()
        w_free = Signal()
        x_free = Signal()
        inc_w = Signal()
        inc_x = Signal()
        l_steps = sel(lw.steps, cmd.k)
        l_final = sel(lw.final, dl.final if grouped else 0)
        # R3c: weight blocks requested and released (only built with column groups)
        wk_req = Signal(self.dim_bits + 1) if grouped else None
        wk_rel = Signal(self.dim_bits + 1) if grouped else None
        m.d.comb += [
            w_pend.eq(sel(lw.w_new, dl.w_new if grouped else 0) & ~w_iss),
            x_pend.eq(sel(lw.x_new, 1) & ~x_iss),
            # A block may be loaded once the ring has room for its steps (R6); R3c: once
            # its bank's block, three before it, is released.
            w_free.eq(sel(self._outstanding(cnt["w_req"], lw.steps, cnt["w_rel"]) <= ring,
                          (wk_req - wk_rel) < 3 if grouped else 0)),
            x_free.eq(self._outstanding(cnt["x_req"], l_steps, cnt["x_rel"]) <= ring),
            inc_w.eq(w_pend & w_free),
            # The activation block joins the request only if it may start now; the payload
            # stays fixed while the request waits (stream rule).
            inc_x.eq(Mux(holding, held_x, x_pend & x_free & (~w_pend | inc_w))),
            # R10b: after the GEMM's last request, the next one's first weight block once
            # the ring has room for it (R6); its fields stay fixed while it waits.
            pf_en.eq(cmd.pf & ~cmd.matmul if self.runs_matmul else cmd.pf),
            pf_show.eq(self.busy & l_done & pf_en & ~pf_iss & (self._outstanding(
                cnt["w_req"], pf_steps, cnt["w_rel"]) <= ring)),
        ]
        req = self.load_req
        wr, xr = req.payload.w, req.payload.x
        # R5 (R11b: a matmul's weight-role block is a_f * k_q values of act_bits); the
        # prefetched block's rows and steps are the command's (R10b).
        w_rows = {core: Mux(l_done, pf_rows[core], sel(getattr(lw, f"rows_{core}"), getattr(
            dl, f"top_rows_{core}") if grouped else 0)) for core in self.cores}
        w_steps = Mux(l_done, pf_steps, l_steps)
        w_block_bytes = (sum(w_rows.values()) * w_steps * e.weight_bits + 7) >> 3
        if self.runs_matmul:
            w_block_bytes = Mux(cmd.matmul, (lw.rows_dsp * lw.steps * e.act_bits + 7) >> 3,
                                w_block_bytes)
        m.d.comb += [
            req.valid.eq(self.busy & ((~l_done & (inc_w | inc_x)) | pf_show)),
            wr.en.eq(inc_w | l_done), wr.next.eq(l_done),
            wr.k0.eq(Mux(l_done, 0, sel(lw.k0, 0))),
            wr.steps.eq(w_steps),
            *(getattr(wr, f"row0_{core}").eq(Mux(l_done, 0, sel(getattr(lw, f"row0_{core}"),
                                                                getattr(dl, f"top_row0_{core}")
                                                                if grouped else 0)))
              for core in self.cores),
            *(getattr(wr, f"rows_{core}").eq(w_rows[core]) for core in self.cores),
            wr.bytes.eq(w_block_bytes),
            xr.en.eq(inc_x & ~l_done), xr.k0.eq(sel(lw.k0, 0)), xr.steps.eq(l_steps),
            xr.col0.eq(sel(lw.col0, dl.col0 if grouped else 0)),
            xr.cols.eq(sel(lw.cols, dl.cols if grouped else 0)),
        ]
        if grouped:  # R3c: group B's positions join the block in its columns' lanes
            x_cols = Signal(range(2 * e.cols + 1))
            m.d.comb += [x_cols.eq(Mux(dealt, dl.cols + dl.cols_b, lw.cols)),
                         xr.col0_b.eq(dl.col0_b), xr.cols_b.eq(Mux(dealt, dl.cols_b, 0)),
                         xr.bytes.eq((x_cols * l_steps * e.act_bits + 7) >> 3)]
        else:
            m.d.comb += xr.bytes.eq((lw.cols * lw.steps * e.act_bits + 7) >> 3)
        accepted = req.valid & req.ready
        tile_issued = Signal()
        m.d.comb += tile_issued.eq((~w_pend | (accepted & inc_w))
                                   & (~x_pend | (accepted & inc_x)))
        with m.If(start):  # R10b: a preloaded command's first weight block is requested
            m.d.sync += [w_iss.eq(pre_in), x_iss.eq(0), holding.eq(0), held_x.eq(0),
                         l_done.eq(0), pf_iss.eq(0)]
            if grouped:
                m.d.sync += wk_req.eq(0)
        with m.Elif(pf_show & accepted):
            m.d.sync += [cnt["w_req"].eq(cnt["w_req"] + pf_steps), pf_iss.eq(1)]
        with m.Elif(self.busy & ~l_done):
            m.d.sync += [holding.eq(req.valid & ~req.ready), held_x.eq(inc_x)]
            with m.If(accepted):
                m.d.sync += [cnt["w_req"].eq(cnt["w_req"] + Mux(inc_w, lw.steps, 0)),
                             cnt["x_req"].eq(cnt["x_req"] + Mux(inc_x, l_steps, 0))]
                if grouped:
                    m.d.sync += wk_req.eq(wk_req + inc_w)
            with m.If(tile_issued):
                m.d.comb += lw.advance.eq(1)
                if grouped:
                    m.d.comb += dl.advance.eq(1)
                m.d.sync += [w_iss.eq(0), x_iss.eq(0), l_done.eq(l_final)]
            with m.Elif(accepted):
                m.d.sync += [w_iss.eq(w_iss | inc_w), x_iss.eq(x_iss | inc_x)]

        # ---- Compute: windows (R4, R8); earlier tiles' drains run beside them (R4b). Two
        # tiles can be in flight: one draining (``dr``), and the newest, whose stream ended
        # and whose drain starts c_j cycles later, pending (``pd``) until then.
        step = Signal(index_shape(kt))
        # The compute side's view of its tile: the tile walker's, or a dealt GEMM's (R3c:
        # one K window per tile, a new activation block every tile, ``span`` its columns
        # for R4/R4b, group B's rows and positions beside group A's).
        c_steps, c_k0 = sel(cw.steps, cmd.k), sel(cw.k0, 0)
        c_w_new, c_x_new = sel(cw.w_new, dc.w_new if grouped else 0), sel(cw.x_new, 1)
        c_last, c_final = sel(cw.last_chunk, 1), sel(cw.final, dc.final if grouped else 0)
        c_rows, c_span = sel(cw.rows, dc.rows if grouped else 0), sel(cw.cols, dc.span
                                                                      if grouped else 0)
        c_rows_dsp = sel(cw.rows_dsp, dc.rows_dsp_max if grouped else 0)
        streaming = Signal()  # windows of the GEMM remain
        # Cycles until the draining tile is done (P - t of R4), 0 once it is.
        left = Signal(range(rmax + e.cols + 1))
        # Cycles until the newest tile handed over is done, and its r_f - s_f (R4b; r_f, the
        # pending descriptor's rows, on an unpacked engine: s_f = 0).
        nleft = Signal(range(rmax + e.cols + 1))
        ngap = Signal(range(rmax + 1))
        drow = Signal(index_shape(rmax))
        # (R4, a shared post-processor on a grouped engine: ``dsp_drain``, the drain cycles
        # of DSP rows, the groups' larger DSP row count; ``rows_dsp`` without groups)
        fields = ("row0_dsp", "rows_dsp", "row0_lut", "rows_lut", "rows", "col0", "cols",
                  *(("dsp_drain",) if self.shared and grouped else ()))
        group_fields = (("span", "row0_dsp_b", "rows_dsp_b", "row0_lut_b", "rows_lut_b",
                         "col0_b", "cols_b") if grouped else ())
        dr = {k: Signal(self.dim_bits, name=f"drained_{k}") for k in fields + group_fields}
        pd = {k: Signal(self.dim_bits, name=f"pending_{k}") for k in fields + group_fields}
        # what a tile hands to the drain: the walker's fields, or the dealt tile's (R3c)
        handed = {k: sel(getattr(cw, k), getattr(dc, k) if grouped else 0) for k in fields
                  if k != "dsp_drain"}
        handed["rows"] = c_rows
        if self.shared and grouped:
            handed["dsp_drain"] = c_rows_dsp
        if grouped:
            handed.update({k: Mux(dealt, getattr(dc, k), 0) for k in group_fields})
            handed["span"] = c_span
        d_final, p_final, pending = Signal(), Signal(), Signal()
        w_avail, x_avail, go, win_end = Signal(), Signal(), Signal(), Signal()
        draining, hold, may_end, tile_end = Signal(), Signal(), Signal(), Signal()
        may_port, may_capture = Signal(name="may_port"), Signal(name="may_capture")
        room, gap = Signal(name="room"), Signal.like(ngap, name="gap")
        rest = Signal.like(left)  # rows of the draining tile not yet drained
        pack = e.dsp_packing if "dsp" in self.cores else 1
        if pack > 1 or self.shared:
            # R4b's r_f - s_f: packed DSP rows are captured `pack` to a cycle; with a
            # shared post-processor a tile's LUT rows are read a_f cycles late (s_f = a_f)
            own = c_rows
            if pack > 1:
                a1 = Signal.like(cw.rows_dsp)
                own = Mux(c_rows_dsp == 0, c_rows, c_rows - a1 + (a1 >> (pack.bit_length() - 1)))
                m.d.comb += a1.eq(c_rows_dsp - 1)
            m.d.comb += gap.eq(Mux(c_rows > c_rows_dsp, c_rows - c_rows_dsp, own)
                               if self.shared else own)
            with m.If(tile_end):
                m.d.sync += ngap.eq(gap)
        else:
            m.d.comb += ngap.eq(pd["rows"])
        m.d.comb += [
            # R8: the step's word is in the ring, or arrives this cycle (cut-through)
            w_avail.eq(~c_w_new | (self._outstanding(cnt["w_in"], self.w_load.valid,
                                                     cnt["w_pos"]) > step)),
            x_avail.eq(~c_x_new | (self._outstanding(cnt["x_in"], self.x_load.valid,
                                                     cnt["x_pos"]) > step)),
            win_end.eq(step + 1 == c_steps),
            draining.eq((left != 0) & (left <= dr["rows"])),
            rest.eq(Mux(left > dr["rows"], dr["rows"], left)),
            # Freeze windows and drain alike only if the output buffer could overflow (a
            # consumer more than a tile behind; R9 assumes it never is) and no later tile
            # is pending: its last step may already be on its way into the drain registers.
            hold.eq(draining & ~pending & (ofifo.level + 2 > out_depth)),
            # A tile's last step makes the draining tile's rest unstoppable: the output
            # buffer must hold it (three tiles' rows; never short without back-pressure).
            room.eq(ofifo.level + 2 + rest <= out_depth),
            # R4b: a tile's last window ends no earlier than P - c_j of the newest tile
            # handed over (its drain then starts after that one's) nor before that tile's
            # drain has read each row its next capture reaches (D + s_f = P - (r_f - s_f)).
            may_port.eq(nleft <= c_steps + c_span),
            may_capture.eq(nleft <= c_steps + ngap),
            may_end.eq(~c_last | (may_port & may_capture)),
            go.eq(streaming & ~hold & w_avail & x_avail & ((step != 0) | may_end)
                  & (~win_end | ~c_last | room)),
            tile_end.eq(go & win_end & c_last),
        ]
        # Ring word where the block of the walker's tile starts (R6): where the block the
        # previous tile used starts (``base``), or, when the tile loads a new one, the word
        # after that block (``size``: the previous tile's steps, its blocks' length in both
        # buffers); and where the next tile's block starts. A resident buffer (R5b) reads
        # the inner loop's first block at word 0 (``home``) and each later one ``K`` words
        # after the previous tile's, loaded or not.
        size = Signal(index_shape(kt + 1))
        # R10b: the weight ring word where this GEMM's first block starts (0 unless it was
        # prefetched: the words before the write position); ``org_in`` in the start cycle.
        w_org = Signal(index_shape(ring))
        org_in = Signal.like(w_org)
        m.d.comb += org_in.eq(Mux(pre_in, ring_sub(wbuf.wr_ptr, pf_steps, ring), 0))
        with m.If(start):
            m.d.sync += w_org.eq(org_in)
        with m.If(start):
            m.d.sync += size.eq(0)
        with m.Elif(go & win_end):
            m.d.sync += size.eq(c_steps)
        for name, buf in (("w", wbuf), ("x", xbuf)):
            # R3c: a dealt GEMM's activation blocks are all new, used by one tile each
            new, last_use, res, home, home_next = (
                getattr(cw, f"{name}_{k}") if name == "w" else sel(getattr(cw, f"x_{k}"), v)
                for k, v in (("new", 1), ("last_use", 1), ("res", 0), ("home", 0),
                             ("home_next", 0)))
            base = Signal(index_shape(ring), name=f"{name}_base")
            cur = Signal(index_shape(ring), name=f"{name}_cur")
            org, org_start = (w_org, org_in) if name == "w" else (0, 0)
            m.d.comb += cur.eq(Mux(home, org, Mux(new | res, ring_add(base, size, ring), base)))
            with m.If(start):
                m.d.sync += base.eq(org_start)
            with m.Elif(go & win_end):
                m.d.sync += base.eq(cur)
            # Address presented next cycle (synchronous read): the next step of this window,
            # or step 0 of the window that comes next; the current step again while held.
            with m.If(go & ~win_end):
                m.d.comb += [buf.rd_base.eq(cur), buf.rd_step.eq(step + 1)]
            with m.Elif(go):
                m.d.comb += [buf.rd_base.eq(Mux(home_next, org, Mux(
                    last_use | res, ring_add(cur, c_steps, ring), cur))), buf.rd_step.eq(0)]
            with m.Elif(start):
                # The first window may start in the first busy cycle (a block that loads in
                # zero cycles, or a prefetched one); its blocks are the first of each buffer:
                # word 0, or the prefetched block's. The walker and registers only restart
                # with this command, so `cur` is stale here.
                m.d.comb += [buf.rd_base.eq(org_start), buf.rd_step.eq(0)]
            with m.Else():
                m.d.comb += [buf.rd_base.eq(cur), buf.rd_step.eq(step)]
        if grouped:
            # R3c: a dealt tile's groups read their row steps' blocks, each in bank ``f mod
            # 3`` from its first word, at the same step; otherwise group B reads group A's.
            def bank_base(bank):
                return Mux(bank == 0, 0, Mux(bank == 1, kt, 2 * kt))

            m.d.comb += wbuf.rd_base_b.eq(wbuf.rd_base)
            with m.If(dealt):
                with m.If(go & win_end):
                    m.d.comb += [wbuf.rd_base.eq(bank_base(dc.bank_next)),
                                 wbuf.rd_base_b.eq(bank_base(dc.bank_next_b))]
                with m.Elif(~start):
                    m.d.comb += [wbuf.rd_base.eq(bank_base(dc.bank)),
                                 wbuf.rd_base_b.eq(bank_base(dc.bank_b))]
                with m.Else():
                    m.d.comb += wbuf.rd_base_b.eq(0)
        wdata = Signal(self.w_beat_layout)
        m.d.comb += [
            wdata.eq(wbuf.data),
            *(getattr(dp, f"w_{core}").eq(getattr(wdata, core)) for core in self.cores),
            dp.x.eq(xbuf.data),
            dp.valid.eq(go), dp.first.eq(go & (step == 0) & (c_k0 == 0)),
            dp.out_bits.eq(cmd.out_bits), dp.out_signed.eq(cmd.out_signed),
            *([getattr(dp, k).eq(getattr(cmd, k)) for k in ("matmul", "a_signed", "b_signed")]
              if self.runs_matmul else []),
            dp.last.eq(tile_end),
        ]
        if grouped:
            wdata_b = Signal(self.w_beat_layout)
            m.d.comb += [wdata_b.eq(wbuf.data_b), *(getattr(dp, f"wb_{core}").eq(
                getattr(wdata_b, core)) for core in self.cores)]

        # The row drained (R4): row ``drow`` of both cores, or with a shared post-processor
        # the DSP core's rows, then (``lut_phase``) the LUT core's.
        index, phase = drow, {}
        if self.shared:
            index, lut_phase = Signal.like(drow, name="drain_index"), Signal(name="lut_phase")
            a_t = dr["dsp_drain"] if grouped else dr["rows_dsp"]
            m.d.comb += [lut_phase.eq(drow >= a_t), dp.drain_lut.eq(lut_phase),
                         index.eq(Mux(lut_phase, drow - a_t, drow))]
            phase = {"dsp": ~lut_phase, "lut": lut_phase}

        # Output rows: post-processor results one cycle after their drain cycle (R3c: group
        # B's row, enables and positions beside group A's).
        sfxs = ("", "_b") if grouped else ("",)
        meta = Signal(self.out_layout)  # the row going into the output buffer
        row_info = Signal(self.out_layout)  # its row/column fields, registered at drain
        for core in self.cores:
            # group B's lanes take group B's row in a dealt tile (R3c), group A's otherwise
            reads = [("", param_rd[core], dr[f"row0_{core}"])]
            if grouped:
                reads.append(("_b", param_rd_b[core],
                              Mux(dealt, dr[f"row0_{core}_b"], dr[f"row0_{core}"])))
            for sfx, rd, row0 in reads:
                m.d.comb += [
                    rd.addr.eq(row0 + index),
                    getattr(dp, f"mult_{core}{sfx}").eq(rd.data.mult),
                    getattr(dp, f"shift_{core}{sfx}").eq(rd.data.shift),
                    getattr(dp, f"bias_{core}{sfx}").eq(rd.data.bias),
                    getattr(dp, f"relu_{core}{sfx}").eq(rd.data.relu),
                ]
            m.d.comb += getattr(meta, core).eq(getattr(dp, f"y_{core}"))
        m.d.comb += [getattr(meta, f).eq(getattr(row_info, f)) for f in (
            *(f"row_{core}{sfx}" for core in self.cores for sfx in sfxs),
            *(f"{core}_en{sfx}" for core in self.cores for sfx in sfxs),
            *(f"col0{sfx}" for sfx in sfxs), *(f"cols{sfx}" for sfx in sfxs))]
        m.d.comb += [dp.drain_row.eq(index), ofifo.w_data.eq(meta), ofifo.w_en.eq(dp.y_valid),
                     self.out.payload.eq(ofifo.r_data), self.out.valid.eq(ofifo.r_rdy),
                     ofifo.r_en.eq(self.out.ready)]
        with m.If(dp.drain):
            for sfx in sfxs:
                m.d.sync += [getattr(row_info, f"row_{core}{sfx}").eq(dr[f"row0_{core}{sfx}"]
                                                                      + index)
                             for core in self.cores]
                m.d.sync += [getattr(row_info, f"{core}_en{sfx}").eq(
                    (index < dr[f"rows_{core}{sfx}"]) & phase[core] if phase
                    else index < dr[f"rows_{core}{sfx}"]) for core in self.cores]
                m.d.sync += [getattr(row_info, f"col0{sfx}").eq(dr[f"col0{sfx}"]),
                             getattr(row_info, f"cols{sfx}").eq(dr[f"cols{sfx}"])]

        # Controller: windows step while `streaming`; the end of a tile's last window hands
        # the tile to the drain, which starts c_j cycles later and takes r_f cycles (R4).
        with m.If(start):
            m.d.sync += [step.eq(0), streaming.eq(1), left.eq(0), nleft.eq(0), pending.eq(0)]
            if grouped:
                m.d.sync += wk_rel.eq(0)
        with m.If(go & ~win_end):
            m.d.sync += step.eq(step + 1)
        with m.Elif(go):
            m.d.sync += [
                step.eq(0),
                cnt["w_pos"].eq(cnt["w_pos"] + Mux(c_w_new, c_steps, 0)),
                cnt["x_pos"].eq(cnt["x_pos"] + Mux(c_x_new, c_steps, 0)),
                # the GEMM's last window releases every weight block it loaded, a resident
                # one's too (R10b: the prefetch's room counts them)
                cnt["w_rel"].eq(Mux(cw.final, cnt["w_pos"] + Mux(cw.w_new, cw.steps, 0),
                                    cnt["w_rel"] + Mux(cw.w_last_use, cw.steps, 0))),
                cnt["x_rel"].eq(cnt["x_rel"] + Mux(sel(cw.x_last_use, 1), c_steps, 0)),
            ]
            m.d.comb += cw.advance.eq(1)
            if grouped:  # R3c: both groups are past every weight block below next_f
                m.d.comb += dc.advance.eq(1)
                m.d.sync += wk_rel.eq(dc.next_f)
        # The GEMM is done after its last drain cycle and (R10b) the prefetched block's last
        # word, whichever comes later.
        fin, fin_now, pf_ok = Signal(), Signal(), Signal()
        m.d.comb += [
            fin_now.eq(draining & ~hold & (left == 1) & d_final),
            pf_ok.eq(~pf_en | (pf_iss & ((cnt["w_in"] + self.w_load.valid)[:self.count_bits]
                                    == cnt["w_req"]))),
        ]
        with m.If(start):
            m.d.sync += fin.eq(0)
        with m.Elif((fin_now | fin) & pf_ok):
            m.d.sync += [self.busy.eq(0), self.done.eq(1), fin.eq(0)]
        with m.Elif(fin_now):
            m.d.sync += fin.eq(1)
        with m.If(draining & ~hold):
            m.d.comb += dp.drain.eq(1)
            m.d.sync += drow.eq(drow + 1)
        with m.If((left != 0) & ~hold):
            m.d.sync += left.eq(left - 1)
        with m.If((nleft != 0) & ~hold):
            m.d.sync += nleft.eq(nleft - 1)
        with m.If(pending & (nleft == pd["rows"] + 1)):
            # The cycle before the pending tile's drain starts (R4b: the draining tile is
            # in its last drain cycle at the latest): it becomes the draining tile.
            m.d.sync += [dr[k].eq(pd[k]) for k in dr]
            m.d.sync += [d_final.eq(p_final), drow.eq(0), left.eq(pd["rows"]),
                         pending.eq(0)]
        with m.If(tile_end):
            m.d.sync += [pd[k].eq(handed[k]) for k in pd]
            m.d.sync += [p_final.eq(c_final), pending.eq(1), nleft.eq(c_rows + c_span),
                         streaming.eq(~c_final)]
        return m
