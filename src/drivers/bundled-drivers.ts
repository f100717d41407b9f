import { displayDriver } from './demo/display.js';
import { lightsDriver } from './demo/lights.js';
import type { DriverRegistry } from '../driver-api/driver-api.js';
import { pjlinkDriver } from './pjlink/pjlink-driver.js';

/** Drivers shipped with the gateway, by the key a module's `driver` names. */
export const bundledDrivers: DriverRegistry = {
  display: displayDriver,
  lights: lightsDriver,
  pjlink: pjlinkDriver,
};
