import './style.css';
import { controlPanel } from './control-panel.js';
import { notifyPanel } from './notify-panel.js';
import { fleetSection } from './fleet-section.js';
import { nodeStatsSection, statsPanel } from './stats-panel.js';

document.querySelector('#app')!.append(statsPanel([nodeStatsSection, fleetSection]), notifyPanel(), controlPanel());
