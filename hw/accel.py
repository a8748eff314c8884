"""The GEMM accelerator top: engine datapath, load buffers, controller and stream ports."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.buffer import RingBuffer, ring_add, ring_sub
from hw.engine import EngineDatapath, check_matmul
from hw.params import act_shape, check_instance, index_shape, lane_shape
from hw.walker import TileWalker, command_layout
from quant.errors import check_int_range
from quant.formats import Scheme, weight_format
from quant.requant import REQUANTIZER
from sim.arch import Accelerator
from sim.resources import out_fifo_depth, ring_count_bits
from sim.timing import ring_steps


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
        act = act_shape(e.act_format)
        self.rows_of = {"dsp": e.dsp_rows, "lut": e.lut_rows}
        self.cores = tuple(core for core in ("dsp", "lut") if self.rows_of[core])
        self.runs_matmul = check_matmul(e, matmul)
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
                "col0": d, "cols": range(c + 1)}),
        })
        self.out_layout = data.StructLayout({
            **self._per_core(lambda core: {core: data.ArrayLayout(
                lane_shape(e, core, self.runs_matmul), c)}),
            **self._per_core(lambda core: {f"row_{core}": d}),
            **self._per_core(lambda core: {f"{core}_en": 1}),
            "col0": d, "cols": range(c + 1)})
        # R10b's fields: a row count of each core, a step count (at least one bit each)
        self.prefetch_bits = (max(1, e.dsp_rows.bit_length()), max(1, e.lut_rows.bit_length()),
                              (kt).bit_length())
        super().__init__({
            "cmd": In(stream.Signature(command_layout(d, self.runs_matmul,
                                                      self.prefetch_bits))),
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
        })

    @staticmethod
    def _outstanding(req, steps, rel, kt: int):
        """``req + steps - rel`` modulo ``2**ring_count_bits(kt)`` (the counters wrap; the
        true value is below): the steps in the ring once a block of ``steps`` more is
        requested, or the words of the compute side's block written so far."""
        return (req + steps - rel)[:ring_count_bits(kt)]

    def _per_core(self, fields) -> dict:
        """The layout fields ``fields(core)`` of every present core, DSP core first."""
        return {name: shape for core in self.cores for name, shape in fields(core).items()}

    def elaborate(self, platform):
        m = Module()
        e = self.accel.engine
        kt = self.accel.memory.k_tile
        rmax = max(e.dsp_rows, e.lut_rows)

        m.submodules.datapath = dp = EngineDatapath(e, self.runs_matmul)
        m.submodules.loader = lw = TileWalker(e.cols, kt, self.dim_bits)
        m.submodules.walker = cw = TileWalker(e.cols, kt, self.dim_bits)
        m.submodules.w_buf = wbuf = RingBuffer(len(Value.cast(self.w_load.payload.data)), kt)
        m.submodules.x_buf = xbuf = RingBuffer(len(Value.cast(self.x_load.payload.data)), kt)
        ring = ring_steps(kt)
        # The output buffer: three tiles' rows and two (sim.resources.out_fifo_depth).
        out_depth = out_fifo_depth(e)
        m.submodules.out_fifo = ofifo = fifo.SyncFIFOBuffered(
            width=len(Value.cast(self.out.payload)), depth=out_depth)

        cmd = Signal(command_layout(self.dim_bits, self.runs_matmul, self.prefetch_bits))
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

        # Load streams into the buffers (the controller only requests released banks).
        for src, buf in ((self.w_load, wbuf), (self.x_load, xbuf)):
            m.d.comb += [buf.load.valid.eq(src.valid),
                         buf.load.payload.data.eq(src.payload.data),
                         buf.load.payload.last.eq(src.payload.last),
                         src.ready.eq(buf.load.ready)]

        # Requantization parameters, one memory per core, written while idle.
        param_rd = {}
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

        # Step counters (modulo 2**ring_count_bits: every difference taken is below it) per
        # ring: steps requested by the loader and released by the end of the last window
        # that uses their block (R6); words written (``in``, R7) and the load position where
        # the compute side's newest block starts (``pos``: the steps of the blocks it loaded
        # before; every word before it is written, R8).
        cnt = {f"{buf}_{k}": Signal(ring_count_bits(kt), name=f"{buf}_{k}")
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
        m.d.comb += [
            w_pend.eq(lw.w_new & ~w_iss),
            x_pend.eq(lw.x_new & ~x_iss),
            # A block may be loaded once the ring has room for its steps (R6).
            w_free.eq(self._outstanding(cnt["w_req"], lw.steps, cnt["w_rel"], kt) <= ring),
            x_free.eq(self._outstanding(cnt["x_req"], lw.steps, cnt["x_rel"], kt) <= ring),
            inc_w.eq(w_pend & w_free),
            # The activation block joins the request only if it may start now; the payload
            # stays fixed while the request waits (stream rule).
            inc_x.eq(Mux(holding, held_x, x_pend & x_free & (~w_pend | inc_w))),
            # R10b: after the GEMM's last request, the next one's first weight block once
            # the ring has room for it (R6); its fields stay fixed while it waits.
            pf_en.eq(cmd.pf & ~cmd.matmul if self.runs_matmul else cmd.pf),
            pf_show.eq(self.busy & l_done & pf_en & ~pf_iss & (self._outstanding(
                cnt["w_req"], pf_steps, cnt["w_rel"], kt) <= ring)),
        ]
        req = self.load_req
        wr, xr = req.payload.w, req.payload.x
        # R5 (R11b: a matmul's weight-role block is a_f * k_q values of act_bits); the
        # prefetched block's rows and steps are the command's (R10b).
        w_rows = {core: Mux(l_done, pf_rows[core], getattr(lw, f"rows_{core}"))
                  for core in self.cores}
        w_steps = Mux(l_done, pf_steps, lw.steps)
        w_block_bytes = (sum(w_rows.values()) * w_steps * e.weight_bits + 7) >> 3
        if self.runs_matmul:
            w_block_bytes = Mux(cmd.matmul, (lw.rows_dsp * lw.steps * e.act_bits + 7) >> 3,
                                w_block_bytes)
        m.d.comb += [
            req.valid.eq(self.busy & ((~l_done & (inc_w | inc_x)) | pf_show)),
            wr.en.eq(inc_w | l_done), wr.next.eq(l_done), wr.k0.eq(Mux(l_done, 0, lw.k0)),
            wr.steps.eq(w_steps),
            *(getattr(wr, f"row0_{core}").eq(Mux(l_done, 0, getattr(lw, f"row0_{core}")))
              for core in self.cores),
            *(getattr(wr, f"rows_{core}").eq(w_rows[core]) for core in self.cores),
            wr.bytes.eq(w_block_bytes),
            xr.en.eq(inc_x & ~l_done), xr.k0.eq(lw.k0), xr.steps.eq(lw.steps),
            xr.col0.eq(lw.col0), xr.cols.eq(lw.cols),
            xr.bytes.eq((lw.cols * lw.steps * e.act_bits + 7) >> 3),
        ]
        accepted = req.valid & req.ready
        tile_issued = Signal()
        m.d.comb += tile_issued.eq((~w_pend | (accepted & inc_w))
                                   & (~x_pend | (accepted & inc_x)))
        with m.If(start):  # R10b: a preloaded command's first weight block is requested
            m.d.sync += [w_iss.eq(pre_in), x_iss.eq(0), holding.eq(0), held_x.eq(0),
                         l_done.eq(0), pf_iss.eq(0)]
        with m.Elif(pf_show & accepted):
            m.d.sync += [cnt["w_req"].eq(cnt["w_req"] + pf_steps), pf_iss.eq(1)]
        with m.Elif(self.busy & ~l_done):
            m.d.sync += [holding.eq(req.valid & ~req.ready), held_x.eq(inc_x)]
            with m.If(accepted):
                m.d.sync += [cnt["w_req"].eq(cnt["w_req"] + Mux(inc_w, lw.steps, 0)),
                             cnt["x_req"].eq(cnt["x_req"] + Mux(inc_x, lw.steps, 0))]
            with m.If(tile_issued):
                m.d.comb += lw.advance.eq(1)
                m.d.sync += [w_iss.eq(0), x_iss.eq(0), l_done.eq(lw.final)]
            with m.Elif(accepted):
                m.d.sync += [w_iss.eq(w_iss | inc_w), x_iss.eq(x_iss | inc_x)]

        # ---- Compute: windows (R4, R8); earlier tiles' drains run beside them (R4b). Two
        # tiles can be in flight: one draining (``dr``), and the newest, whose stream ended
        # and whose drain starts c_j cycles later, pending (``pd``) until then.
        step = Signal(index_shape(kt))
        streaming = Signal()  # windows of the GEMM remain
        # Cycles until the draining tile is done (P - t of R4), 0 once it is.
        left = Signal(range(rmax + e.cols + 1))
        # Cycles until the newest tile handed over is done, and its r_f - s_f (R4b; r_f, the
        # pending descriptor's rows, on an unpacked engine: s_f = 0).
        nleft = Signal(range(rmax + e.cols + 1))
        ngap = Signal(range(rmax + 1))
        drow = Signal(index_shape(rmax))
        fields = ("row0_dsp", "rows_dsp", "row0_lut", "rows_lut", "rows", "col0", "cols")
        dr = {k: Signal(self.dim_bits, name=f"drained_{k}") for k in fields}
        pd = {k: Signal(self.dim_bits, name=f"pending_{k}") for k in fields}
        d_final, p_final, pending = Signal(), Signal(), Signal()
        w_avail, x_avail, go, win_end = Signal(), Signal(), Signal(), Signal()
        draining, hold, may_end, tile_end = Signal(), Signal(), Signal(), Signal()
        may_port, may_capture = Signal(name="may_port"), Signal(name="may_capture")
        room, gap = Signal(name="room"), Signal.like(ngap, name="gap")
        rest = Signal.like(left)  # rows of the draining tile not yet drained
        pack = e.dsp_packing if "dsp" in self.cores else 1
        if pack > 1:  # R4b's s_f: packed DSP rows are captured `pack` to a cycle
            a1 = Signal.like(cw.rows_dsp)
            m.d.comb += [a1.eq(cw.rows_dsp - 1),
                         gap.eq(Mux(cw.rows_dsp == 0, cw.rows,
                                    cw.rows - a1 + (a1 >> (pack.bit_length() - 1))))]
            with m.If(tile_end):
                m.d.sync += ngap.eq(gap)
        else:
            m.d.comb += ngap.eq(pd["rows"])
        m.d.comb += [
            # R8: the step's word is in the ring, or arrives this cycle (cut-through)
            w_avail.eq(~cw.w_new | (self._outstanding(cnt["w_in"], self.w_load.valid,
                                                      cnt["w_pos"], kt) > step)),
            x_avail.eq(~cw.x_new | (self._outstanding(cnt["x_in"], self.x_load.valid,
                                                      cnt["x_pos"], kt) > step)),
            win_end.eq(step + 1 == cw.steps),
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
            may_port.eq(nleft <= cw.steps + cw.cols),
            may_capture.eq(nleft <= cw.steps + ngap),
            may_end.eq(~cw.last_chunk | (may_port & may_capture)),
            go.eq(streaming & ~hold & w_avail & x_avail & ((step != 0) | may_end)
                  & (~win_end | ~cw.last_chunk | room)),
            tile_end.eq(go & win_end & cw.last_chunk),
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
            m.d.sync += size.eq(cw.steps)
        for name, buf in (("w", wbuf), ("x", xbuf)):
            new, last_use, res, home, home_next = (getattr(cw, f"{name}_{k}") for k in (
                "new", "last_use", "res", "home", "home_next"))
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
                    last_use | res, ring_add(cur, cw.steps, ring), cur))), buf.rd_step.eq(0)]
            with m.Elif(start):
                # The first window may start in the first busy cycle (a block that loads in
                # zero cycles, or a prefetched one); its blocks are the first of each buffer:
                # word 0, or the prefetched block's. The walker and registers only restart
                # with this command, so `cur` is stale here.
                m.d.comb += [buf.rd_base.eq(org_start), buf.rd_step.eq(0)]
            with m.Else():
                m.d.comb += [buf.rd_base.eq(cur), buf.rd_step.eq(step)]
        wdata = Signal(self.w_beat_layout)
        m.d.comb += [
            wdata.eq(wbuf.data),
            *(getattr(dp, f"w_{core}").eq(getattr(wdata, core)) for core in self.cores),
            dp.x.eq(xbuf.data),
            dp.valid.eq(go), dp.first.eq(go & (step == 0) & (cw.k0 == 0)),
            dp.out_bits.eq(cmd.out_bits), dp.out_signed.eq(cmd.out_signed),
            *([getattr(dp, k).eq(getattr(cmd, k)) for k in ("matmul", "a_signed", "b_signed")]
              if self.runs_matmul else []),
            dp.last.eq(tile_end),
        ]

        # Output rows: post-processor results one cycle after their drain cycle.
        meta = Signal(self.out_layout)  # the row going into the output buffer
        row_info = Signal(self.out_layout)  # its row/column fields, registered at drain
        for core in self.cores:
            rd = param_rd[core]
            m.d.comb += [
                rd.addr.eq(dr[f"row0_{core}"] + drow),
                getattr(dp, f"mult_{core}").eq(rd.data.mult),
                getattr(dp, f"shift_{core}").eq(rd.data.shift),
                getattr(dp, f"bias_{core}").eq(rd.data.bias),
                getattr(dp, f"relu_{core}").eq(rd.data.relu),
                getattr(meta, core).eq(getattr(dp, f"y_{core}")),
            ]
        m.d.comb += [getattr(meta, f).eq(getattr(row_info, f)) for f in (
            *(f"row_{core}" for core in self.cores), *(f"{core}_en" for core in self.cores),
            "col0", "cols")]
        m.d.comb += [dp.drain_row.eq(drow), ofifo.w_data.eq(meta), ofifo.w_en.eq(dp.y_valid),
                     self.out.payload.eq(ofifo.r_data), self.out.valid.eq(ofifo.r_rdy),
                     ofifo.r_en.eq(self.out.ready)]
        with m.If(dp.drain):
            m.d.sync += [getattr(row_info, f"row_{core}").eq(dr[f"row0_{core}"] + drow)
                         for core in self.cores]
            m.d.sync += [getattr(row_info, f"{core}_en").eq(drow < dr[f"rows_{core}"])
                         for core in self.cores]
            m.d.sync += [row_info.col0.eq(dr["col0"]), row_info.cols.eq(dr["cols"])]

        # Controller: windows step while `streaming`; the end of a tile's last window hands
        # the tile to the drain, which starts c_j cycles later and takes r_f cycles (R4).
        with m.If(start):
            m.d.sync += [step.eq(0), streaming.eq(1), left.eq(0), nleft.eq(0), pending.eq(0)]
        with m.If(go & ~win_end):
            m.d.sync += step.eq(step + 1)
        with m.Elif(go):
            m.d.sync += [
                step.eq(0),
                cnt["w_pos"].eq(cnt["w_pos"] + Mux(cw.w_new, cw.steps, 0)),
                cnt["x_pos"].eq(cnt["x_pos"] + Mux(cw.x_new, cw.steps, 0)),
                # the GEMM's last window releases every weight block it loaded, a resident
                # one's too (R10b: the prefetch's room counts them)
                cnt["w_rel"].eq(Mux(cw.final, cnt["w_pos"] + Mux(cw.w_new, cw.steps, 0),
                                    cnt["w_rel"] + Mux(cw.w_last_use, cw.steps, 0))),
                cnt["x_rel"].eq(cnt["x_rel"] + Mux(cw.x_last_use, cw.steps, 0)),
            ]
            m.d.comb += cw.advance.eq(1)
        # The GEMM is done after its last drain cycle and (R10b) the prefetched block's last
        # word, whichever comes later.
        fin, fin_now, pf_ok = Signal(), Signal(), Signal()
        m.d.comb += [
            fin_now.eq(draining & ~hold & (left == 1) & d_final),
            pf_ok.eq(~pf_en | (pf_iss & ((cnt["w_in"] + self.w_load.valid)[:ring_count_bits(kt)]
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
            m.d.sync += [pd[k].eq(getattr(cw, k)) for k in pd]
            m.d.sync += [p_final.eq(cw.final), pending.eq(1), nleft.eq(cw.rows + cw.cols),
                         streaming.eq(~cw.final)]
        return m
