"""labgrid drivers of the simulated rig (hil/rigs/sim.yaml imports this file).

They implement labgrid's PowerProtocol, as the real rig's ExternalPowerDriver and
USBPowerDriver do, so a scenario switches "power", "uplink", "broker" or "printer" the
same way on both rigs: `target.get_driver("PowerProtocol", name="uplink").off()`.
What off/on mean here is done by the SimWorld of the running rig (hil/posedge_hil/simrig.py):

  part=agent    off: SIGKILL the agent (power cut)  on: start it again on the same outbox
  part=uplink   off: `ip link set <veth> down` on the agent's uplink  on: set it up again
  part=broker   off: SIGTERM Mosquitto (it saves its sessions)  on: start it again
  part=printer  off: the recording printer closes its socket and stops listening  on: back
"""

from __future__ import annotations

import time

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol
from labgrid.step import step

#: The SimWorld the drivers act on; set by SimRig before the drivers are activated.
WORLD = None


def world():
    if WORLD is None:
        raise RuntimeError("no simulated rig is running")
    return WORLD


@target_factory.reg_driver
@attr.s(eq=False)
class PosedgeSimPowerDriver(Driver, PowerProtocol):
    """Power-switches one part of the simulated rig."""

    bindings: dict = {}
    part = attr.ib(validator=attr.validators.in_(["agent", "uplink", "broker", "printer"]))
    delay = attr.ib(default=1.0, converter=float)

    @Driver.check_active
    @step()
    def on(self):
        world().switch(self.part, True)

    @Driver.check_active
    @step()
    def off(self):
        world().switch(self.part, False)

    @Driver.check_active
    @step()
    def cycle(self):
        self.off()
        time.sleep(self.delay)
        self.on()

    @Driver.check_active
    def get(self):
        return world().is_on(self.part)
