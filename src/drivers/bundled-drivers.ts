import { displayDriver } from './demo/display.js';
import { lightsDriver } from './demo/lights.js';
import type { DriverRegistry } from './driver-api.js';

/** Drivers shipped with the gateway, by the key a module's `driver` names. */
export const bundledDrivers: DriverRegistry = {
  display: displayDriver,
  lights: lightsDriver,
};
